# The temporal-bootstrap worker image. Its install step is scripts/install-product.sh, which
# CI runs into a fresh virtual environment and starts the worker from (no image can be built
# on the CI machines), so what this image installs is what the tests exercised.
#
#   docker build -t temporal-bootstrap:dev .
#   kubectl apply -k deploy/overlays/example     (see deploy/README.md)
FROM python:3.11-slim

WORKDIR /src
COPY . /src
RUN scripts/install-product.sh /opt/temporal-bootstrap \
    && rm -rf /src /root/.cache \
    && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin temporal-bootstrap

ENV PATH=/opt/temporal-bootstrap/bin:$PATH \
    HELM_BIN=/opt/temporal-bootstrap/bin/helm \
    TEMPORAL_BOOTSTRAP_STATE_DIR=/var/lib/temporal-bootstrap \
    TEMPORAL_BOOTSTRAP_ENVIRONMENTS=/etc/temporal-bootstrap/environments \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1

# Non-root; the root file system can be read-only: state and helm's caches go to volumes.
USER 10001
WORKDIR /tmp
ENTRYPOINT ["temporal-bootstrap-worker"]
