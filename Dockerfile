# syntax=docker/dockerfile:1
# sfsync: a small non-root image whose entry point is the sfsync CLI.
#   docker build -t sfsync:0.1.0 .
#   docker compose -f deploy/docker-compose.yml ...   (deploy/README.md walks it through)
# It needs a config file (sfsync reads config/sfsync.yaml in its working directory,
# /var/lib/sfsync, or $SFSYNC_CONFIG), secrets as files (<key>_file settings), and a
# writable /tmp; the root filesystem may be read-only.
#
# The base image is pinned to a Python patch release. To pin its digest as well (a
# rebuild then gets byte-identical layers), look it up and pass it in:
#   docker buildx imagetools inspect python:3.12.12-slim-bookworm   # "Digest: sha256:..."
#   docker build --build-arg PYTHON_IMAGE=python:3.12.12-slim-bookworm@sha256:<digest> ...
ARG PYTHON_IMAGE=python:3.12.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md alembic.ini ./
COPY sfsync ./sfsync
COPY migrations ./migrations
# sfsync's wheel, then wheels of its runtime dependencies (no extras).
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
 && pip wheel --no-cache-dir --wheel-dir /wheels /wheels/sfsync-*.whl

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SFSYNC_LOGGING__FORMAT=json \
    SFSYNC_SCHEDULE__HEALTH_FILE=/tmp/sfsync-health.json
# A real group for the gid the image runs as: files sfsync creates, and secrets mounted
# for group 10001 (Kubernetes fsGroup, the compose kit's secrets), belong to it.
RUN groupadd --gid 10001 sfsync \
 && useradd --uid 10001 --gid 10001 --no-log-init --create-home \
      --home-dir /var/lib/sfsync --shell /usr/sbin/nologin sfsync
COPY --from=build /wheels /wheels
# The wheel built above and only the dependency wheels resolved for it, offline. No
# extras: the dev org (sfsync[devorg], i.e. trustme and lark) is not in the image.
RUN pip install --no-cache-dir --no-index --find-links /wheels /wheels/sfsync-*.whl \
 && rm -rf /wheels
COPY deploy/healthcheck.py /usr/local/lib/sfsync/healthcheck.py
USER 10001:10001
WORKDIR /var/lib/sfsync
# Unhealthy when the worker's health file is stale (a hung worker) or says its last run
# failed; a one-shot container (sfsync run, check, db upgrade) writes none and stays
# healthy. See deploy/healthcheck.py.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "/usr/local/lib/sfsync/healthcheck.py", "--max-age", "60"]
ENTRYPOINT ["sfsync"]
CMD ["worker"]
