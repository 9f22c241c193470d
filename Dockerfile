# One image for every program: `activity apiserver | webhook | consume | migrate`.
# No extra: in a cluster the programs talk to ClickHouse over HTTP and to a NATS server (no `embedded` engine), and
# the developer tools (`tools`: up, loadgen, bench) are not what the image runs.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/activity
COPY pyproject.toml README.md /src/
COPY auditlog /src/auditlog
COPY ingest /src/ingest
COPY apiserver /src/apiserver
COPY activity /src/activity
COPY kubectl_activity /src/kubectl_activity
# A wheel install (not editable): the final stage copies only the virtualenv, never the sources or pip's caches.
RUN /opt/activity/bin/pip install /src \
    && /opt/activity/bin/pip uninstall --yes pip setuptools \
    && find /opt/activity -name '__pycache__' -prune -exec rm -rf {} +

FROM python:3.11-slim
# Read-only root filesystem: no .pyc writes, HOME and temporary files in /tmp (an emptyDir in the manifests).
ENV PATH=/opt/activity/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp
COPY --from=build /opt/activity /opt/activity
# Compile once at build time, as root, so nothing is compiled (or written) at run time.
RUN python -m compileall -q /opt/activity/lib
USER 65532:65532
WORKDIR /tmp
# apiserver: --secure-port, --metrics-port; webhook: --listen; consumer probes and metrics: --listen (manifests).
EXPOSE 6443 9090 8090
ENTRYPOINT ["activity"]
CMD ["--help"]
