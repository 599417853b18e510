# syntax=docker/dockerfile:1
FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY pyproject.toml ./
COPY mcpauth_service ./mcpauth_service
COPY projects ./projects
COPY oauth ./oauth
COPY dashboard ./dashboard
RUN pip install --no-cache-dir .

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 MCPAUTH_VAR_DIR=/app/var LOG_FORMAT=json \
    HOST=0.0.0.0 PORT=8000
RUN useradd --create-home --uid 10001 mcpauth
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY --chown=mcpauth:mcpauth . /app
USER mcpauth
# Build-only keys, so that no key file is made in var/ and baked into the image; var/ is removed.
RUN SECRET_KEY=build-only-not-secret-collectstatic-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx \
    DIGEST_KEY=build-only KEY_ENCRYPTION_KEY=build-only \
    python manage.py collectstatic --noinput --verbosity 0 && rm -rf /app/var
EXPOSE 8000
# The server as shipped (mcpauth_service/serve.py, the same command as `make serve`): granian,
# WEB_WORKERS (default: the CPU count) x WEB_THREADS (default 8). It refuses to start without
# SECRET_KEY, DIGEST_KEY and KEY_ENCRYPTION_KEY once DATABASE_URL is set (docs/deployment.md).
CMD ["python", "-m", "mcpauth_service.serve"]
