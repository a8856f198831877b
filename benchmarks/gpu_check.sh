#!/usr/bin/env bash
# On a machine with a CUDA GPU, in under 10 minutes: the CUDA tests, the engine bench on
# cuda against the tutorial's code (target there: 5x), and one 60-second training run.
#   bash benchmarks/gpu_check.sh            (PY=... to use another interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU visible'; print('GPU:', torch.cuda.get_device_name())"
echo "== tests on cuda"
SAE_TEST_DEVICE=cuda timeout 240 "$PY" -m pytest -q -p no:cacheprovider tests/test_cuda.py
echo "== engine bench on cuda"
timeout 200 "$PY" -m benchmarks.engine --device cuda --batches 10
echo "== 60-second training run on cuda"
out=$(mktemp -d)/sae_cuda_60s.pt
timeout 150 "$PY" -m sae train --device cuda --time-budget 60 --out "$out"
