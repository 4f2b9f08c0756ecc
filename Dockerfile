# InsightFlow runtime image: both flows, both dbt projects with their manifests baked in, the locked
# dependency set (uv.lock) in a virtualenv, run as a non-root user. Built and pushed by the build/push
# steps in prefect.yaml; the pull step there changes into INSIGHTFLOW_APP_DIR.
#
# BASE_IMAGE is Prefect's own image by default. Where that registry is out of reach, any Debian-like
# image with Python 3.11 on PATH as `python` stands in (.ci/image makes one from Debian's packages):
#   podman build --build-arg BASE_IMAGE=localhost/insightflow-base:py3.11 -t insightflow .
# Behind a TLS-intercepting proxy, mount the host's CA store for the RUN steps only (never COPY it):
#   podman build -v /etc/ssl/certs:/etc/ssl/certs:ro ...        (docs/deploy.md, "Proxy CA")
ARG BASE_IMAGE=prefecthq/prefect:3.8.8-python3.11

# ---- deps: exactly uv.lock's runtime packages in /opt/venv, then trimmed (measured in docs/deploy.md) --
FROM ${BASE_IMAGE} AS deps
ARG UV_VERSION=0.13.8
# PEM text of CAs to trust in this stage only, for builds that cannot mount the host's store (the
# Docker API has no build-time volumes); set by prefect.yaml's build-args step from
# INSIGHTFLOW_BUILD_EXTRA_CA. This stage is discarded: its args never reach the image's history.
ARG EXTRA_CA_CERTS=""
ENV UV_SYSTEM_CERTS=1 \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /src
COPY pyproject.toml uv.lock ./
# uv from the package index into a throwaway directory (it never reaches the final stage). `uv sync
# --frozen` installs what uv.lock says or fails: no resolution happens in the build. No bytecode is
# compiled here (uv's default): the .pyc files would add ~170 MB; see the runtime stage for ours.
RUN if [ -n "$EXTRA_CA_CERTS" ]; then \
        cat /etc/ssl/certs/ca-certificates.crt > /tmp/ca.pem && printf '%s\n' "$EXTRA_CA_CERTS" >> /tmp/ca.pem \
        && export SSL_CERT_FILE=/tmp/ca.pem PIP_CERT=/tmp/ca.pem; \
    fi \
    && python -m pip install --quiet --no-cache-dir --target /tmp/uv "uv==${UV_VERSION}" \
    && /tmp/uv/bin/uv venv /opt/venv --python "$(command -v python)" \
    && /tmp/uv/bin/uv sync --frozen --no-dev --no-install-project \
    && rm -rf /tmp/uv /tmp/ca.pem
# Trim what a batch worker never loads, each item measured: debug symbols of the compiled extensions
# (-95 MB; auditwheel's vendored *.libs are left alone, stripping them breaks their loading), Arrow
# Flight (an RPC framework, -33 MB), C++ headers and the packages' own test suites.
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends binutils > /dev/null \
    && site=/opt/venv/lib/python3.11/site-packages \
    && rm -rf "$site"/pyarrow/libarrow_flight.so* "$site"/pyarrow/libarrow_python_flight.so* \
        "$site"/pyarrow/_flight.*.so "$site"/pyarrow/flight.py "$site"/pyarrow/include \
        "$site"/pyarrow/tests "$site"/pyarrow/_pyarrow_cpp_tests.*.so \
        "$site"/numpy/*/tests "$site"/numpy/tests "$site"/matplotlib/tests \
    && find "$site" -type f \( -name '*.so' -o -name '*.so.[0-9]*' \) -not -path '*.libs/*' \
        -exec strip --strip-unneeded {} + \
    && find /opt/venv -name __pycache__ -type d -prune -exec rm -rf {} +

# ---- runtime ----------------------------------------------------------------------------------------
FROM ${BASE_IMAGE}

# Heartbeats every 30 s (the crash automation marks a run whose process died Crashed after three missed
# ones) and Prefect API calls retried for ~4 minutes of outage: tasks/core/orchestration.py.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    INSIGHTFLOW_APP_DIR=/opt/prefect/insightflow \
    INSIGHTFLOW_HOME=/home/insightflow/.insightflow \
    PYTHONPATH=/opt/prefect/insightflow \
    DBT_SEND_ANONYMOUS_USAGE_STATS=false \
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY=30 \
    PREFECT_CLIENT_MAX_RETRIES=7 \
    PREFECT_CLIENT_RETRY_JITTER_FACTOR=0.2

RUN groupadd --system --gid 10001 insightflow \
    && useradd --system --uid 10001 --gid insightflow --create-home --home-dir /home/insightflow insightflow

COPY --from=deps /opt/venv /opt/venv
WORKDIR /opt/prefect/insightflow

# dbt projects next: `dbt deps` (when a project has packages) and `dbt parse` at build time, so a
# run never downloads packages and starts from a baked manifest. Parsed against the local DuckDB
# target, which needs no credentials; dbt writes target/ and logs/ at run time, hence the owner.
COPY --chown=insightflow:insightflow dbt/ dbt/
RUN for project in dbt/*/; do \
        if [ -f "${project}packages.yml" ] || [ -f "${project}dependencies.yml" ]; then \
            dbt deps --project-dir "$project" --profiles-dir "$project" || exit 1; \
        fi; \
        INSIGHTFLOW_HOME=/tmp/dbt-parse dbt parse --project-dir "$project" --profiles-dir "$project" --target dev || exit 1; \
    done \
    && rm -rf /tmp/dbt-parse dbt/*/logs \
    && chown -R insightflow:insightflow dbt

# Code last. It runs from this directory (the pull step changes into it; PYTHONPATH makes it
# importable from anywhere). Its own bytecode is compiled (a few hundred KB) and so is Prefect's,
# which every run imports first; the rest of the venv compiles in memory on import.
COPY flows/ flows/
COPY tasks/ tasks/
COPY blocks/ blocks/
COPY automations/ automations/
COPY prefect.yaml pyproject.toml ./
RUN python -m compileall -q -j 0 flows tasks blocks automations /opt/venv/lib/python3.11/site-packages/prefect > /dev/null \
    && python -c "import flows.insightflow, flows.football, blocks, automations"

USER 10001:10001
