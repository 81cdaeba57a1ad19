# sfsync: a small non-root image whose entry point is the sfsync CLI.
#   docker build -t sfsync .
#   docker run --rm -v $PWD/sfsync.yaml:/var/lib/sfsync/config/sfsync.yaml:ro \
#     -e SFSYNC_SALESFORCE__CLIENT_SECRET=... sfsync check
# It needs only environment variables and one mounted config file: sfsync reads
# config/sfsync.yaml from its working directory (/var/lib/sfsync), or $SFSYNC_CONFIG.

FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md alembic.ini ./
COPY sfsync ./sfsync
COPY migrations ./migrations
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
 && pip wheel --no-cache-dir --wheel-dir /wheels /wheels/sfsync-*.whl

FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SFSYNC_LOGGING__FORMAT=json \
    SFSYNC_SCHEDULE__HEALTH_FILE=/tmp/sfsync-health.json
RUN useradd --system --create-home --uid 10001 --home-dir /var/lib/sfsync sfsync
COPY --from=build /wheels /wheels
# sfsync without extras: no dev org (sfsync[devorg], i.e. trustme and lark) in the image.
RUN pip install --no-cache-dir --no-index --find-links /wheels sfsync \
 && rm -rf /wheels
USER 10001:10001
WORKDIR /var/lib/sfsync
# The worker rewrites its health file every few seconds; a stale file means a hung process.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
  CMD python -c "import os,sys,time; p=os.environ['SFSYNC_SCHEDULE__HEALTH_FILE']; sys.exit(0 if time.time()-os.path.getmtime(p) < 60 else 1)"
ENTRYPOINT ["sfsync"]
CMD ["worker"]
