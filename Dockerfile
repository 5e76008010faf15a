# The perfhouse image of the compose stack: the dashboard and the demo API (and the CLI).
#   docker build -t perfhouse:local .          (or: docker compose build)
# PYTHON_IMAGE names the base, for a registry mirror or a pinned digest.
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false PERFHOUSE_RUNS_DIR=/data/runs
WORKDIR /opt/perfhouse
COPY pyproject.toml README.md ./
COPY orchestrator ./orchestrator
COPY warehouse ./warehouse
COPY dashboard ./dashboard
COPY templates ./templates
RUN pip install . && useradd --create-home --uid 10001 perfhouse && mkdir -p /data/runs \
    && chown -R perfhouse /data
USER perfhouse
WORKDIR /data
EXPOSE 8501 8080
CMD ["perfhouse", "dashboard", "--port", "8501"]
