# InsightFlow runtime image: both flows, both dbt projects with packages and manifests baked in,
# run as a non-root user. Built and pushed by the build/push steps in prefect.yaml; the pull step
# there changes into INSIGHTFLOW_APP_DIR. Layers go from least to most often changed.
FROM prefecthq/prefect:3.8.8-python3.11

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    INSIGHTFLOW_APP_DIR=/opt/prefect/insightflow \
    INSIGHTFLOW_HOME=/home/insightflow/.insightflow \
    PYTHONPATH=/opt/prefect/insightflow \
    DBT_SEND_ANONYMOUS_USAGE_STATS=false

RUN groupadd --system --gid 10001 insightflow \
    && useradd --system --uid 10001 --gid insightflow --create-home --home-dir /home/insightflow insightflow

WORKDIR /opt/prefect/insightflow

# Dependencies first, from the same pyproject.toml (and lock file, when there is one) that CI
# installs, so this layer is rebuilt only when they change, not on every code edit.
COPY pyproject.toml requirements.lock* ./
RUN if [ -f requirements.lock ]; then \
        pip install -r requirements.lock; \
    else \
        python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
        && pip install -r /tmp/requirements.txt && rm /tmp/requirements.txt; \
    fi

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

# Code last. `pip install --no-deps .` is CI's install of the same pyproject (non-editable). The
# flows run from this directory (pull step) and tasks/core/config.py finds dbt/ next to tasks/, so
# PYTHONPATH makes this copy win over the one pip put in site-packages.
COPY README.md ./
COPY flows/ flows/
COPY tasks/ tasks/
COPY blocks/ blocks/
COPY automations/ automations/
COPY prefect.yaml ./
RUN pip install --no-deps . \
    && rm -rf build *.egg-info \
    && python -c "import flows, tasks, blocks"

USER 10001:10001
