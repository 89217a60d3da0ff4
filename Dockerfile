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

# MALLOC_ARENA_MAX=2: glibc gives each thread that allocates (8 activity threads, the SDK's
# core threads) its own malloc arena, and freed memory stays spread over them. Capped at 2,
# the worker grew +4.2 MB over 190 no-change runs instead of +7.8 MB, at the same run time
# (docs/benchmarks.md, section 4); it holds no Python objects per run either way.
ENV MALLOC_ARENA_MAX=2

# Non-root; the root file system can be read-only: state and helm's caches go to volumes.
USER 10001
WORKDIR /tmp
ENTRYPOINT ["temporal-bootstrap-worker"]
