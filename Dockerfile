# The one image of every dunning process: migrate, worker, scheduler and web differ only in
# their command (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Only what the distribution needs: no virtualenv, caches or local databases get in.
COPY pyproject.toml README.md constraints.txt ./
COPY config ./config
COPY dunning ./dunning
COPY workers ./workers
COPY schedules ./schedules
COPY templates ./templates

# The email templates install as package data beside the packages (templates/email). Every
# dependency at the exact version of constraints.txt (scripts/lock refreshes it).
RUN pip install --constraint constraints.txt . \
    && useradd --system --uid 10001 --no-create-home --home-dir /app dunning \
    && mkdir -p /app/var \
    && chown dunning /app/var

USER dunning

# 8000: web (webhooks, card-update page, /healthz, /ops; /metrics behind the ops login);
# 9191: worker metrics; 9192: web metrics (DUNNING_OPS__METRICS_PORT, internal only).
EXPOSE 8000 9191 9192

CMD ["dunning", "--help"]
