# requence-exporter: a small, non-root image that runs with a read-only root filesystem.
# Build: docker build -t requence-exporter:dev --build-arg REVISION="$(git rev-parse HEAD)" .
# VERSION below is the release version (scripts/check_version.py keeps it in step).

FROM python:3.12-slim AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# The per-update modules are compiled with mypyc (setup.py), which needs a C compiler. It stays
# in this stage: the image that ships gets the built venv only. Debian's current compiler is
# wanted here, whatever its version, so it is not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# .dockerignore lets in only what the package build needs.
COPY . .
# The compiled build's requirements (mypy, the stubs, the dependencies it type-checks) are
# declared by setup.py and installed into pip's isolated build environment, not the venv; the
# last line fails the build if the result is not compiled.
RUN REQUENCE_EXPORTER_COMPILE=1 pip install --no-cache-dir . \
    && python -I -c "import sys, exporter; sys.exit(0 if exporter.is_compiled() else 'not compiled')"

FROM python:3.12-slim
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="requence-exporter" \
      org.opencontainers.image.description="Prometheus metrics and OpenTelemetry traces for Requence workflow tasks" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/python:3.12-slim"
# Bytecode is compiled at build time; at run time the root filesystem is read-only.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# A fixed numeric user, so Kubernetes can verify runAsNonRoot without resolving names.
RUN groupadd --system --gid 10001 requence \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin requence \
    && mkdir -p /var/lib/requence-exporter \
    && chown 10001:10001 /var/lib/requence-exporter
COPY --from=builder /opt/venv /opt/venv
# The only place the exporter writes: its state file (mount a volume here).
VOLUME ["/var/lib/requence-exporter"]
WORKDIR /var/lib/requence-exporter
USER 10001:10001
EXPOSE 9721
# slim has no curl; probe the port from REQUENCE_EXPORTER_LISTEN the way the exporter binds it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; host, _, port = os.environ.get('REQUENCE_EXPORTER_LISTEN', '0.0.0.0:9721').rpartition(':'); host = host.strip('[]'); host = '127.0.0.1' if host in ('', '0.0.0.0', '::') else host; host = f'[{host}]' if ':' in host else host; urllib.request.urlopen(f'http://{host}:{port}/healthz', timeout=4)"]
ENTRYPOINT ["requence-exporter"]
CMD ["run"]
