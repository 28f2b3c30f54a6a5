# The one image of every dunning process: migrate, worker, scheduler and web differ only in
# their command (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Only what the distribution needs: no virtualenv, caches or local databases get in.
COPY pyproject.toml README.md ./
COPY config ./config
COPY dunning ./dunning
COPY workers ./workers
COPY schedules ./schedules
COPY templates ./templates

# The email templates live beside the packages, not inside one (dunning/mail/render.py looks
# for <site-packages>/templates/email), so they are copied there after the install.
RUN pip install . \
    && cp -r templates "$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/templates" \
    && useradd --system --uid 10001 --no-create-home --home-dir /app dunning \
    && mkdir -p /app/var \
    && chown dunning /app/var

USER dunning

# 8000: web (webhooks, card-update page, /healthz, /metrics, /ops); 9191: worker metrics.
EXPOSE 8000 9191

CMD ["dunning", "--help"]
