"""``python -m sae bench``: the tutorial's code and this project's engine, side by side.

Both run on the same batches in the same process, alternating, so a busy machine
slows both alike; the ratio is what to read.  The tutorial's code lives in
``benchmarks/tutorial_sae.py`` (not in the library).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from sae.devices import resolve_device
from sae.engine import compiled_forward, fast_train_step
from sae.model import SpikingAutoencoder

BATCH = 250


def _tutorial_module():
    root = Path(__file__).resolve().parent.parent
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from benchmarks import tutorial_sae

    return tutorial_sae


def _timed(fn, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def _side_by_side(a, b, rounds: int, device) -> tuple[float, float]:
    """Median seconds per call of a and b, alternating a, b, a, b, ..."""
    times_a, times_b = [], []
    for _ in range(rounds):
        times_a.append(_timed(a, device))
        times_b.append(_timed(b, device))
    return statistics.median(times_a), statistics.median(times_b)


def run_bench(args) -> int:
    device = resolve_device(args.device)
    tutorial = _tutorial_module()
    torch.manual_seed(0)
    images = torch.rand(BATCH, 1, 32, 32, device=device)
    reference = tutorial.build_tutorial_sae().to(device)
    ours = SpikingAutoencoder().to(device)
    ours.load_state_dict(reference.state_dict())
    print(f"device {device}, {torch.get_num_threads()} threads, batch {BATCH}, num_steps 5, fp32")

    # Training: one optimizer step per call (forward, MSE, backward, AdamW).
    ref_opt = tutorial.tutorial_optimizer(reference)
    our_opt = tutorial.tutorial_optimizer(ours)
    our_step = fast_train_step(ours, our_opt)
    print("compiling the training step (cached after the first run)…", flush=True)
    t0 = time.perf_counter()
    our_step(images)
    tutorial.tutorial_train_step(reference, ref_opt, images)
    print(f"  warm-up took {time.perf_counter() - t0:.1f} s")
    ref_s, our_s = _side_by_side(lambda: tutorial.tutorial_train_step(reference, ref_opt, images),
                                 lambda: our_step(images), args.batches, device)
    print(f"training   tutorial {BATCH / ref_s:7.0f} img/s   ours {BATCH / our_s:7.0f} img/s   ratio {ref_s / our_s:.2f}x")

    # Inference: the forward alone, eval mode, no gradients.
    reference.eval(), ours.eval()
    our_forward = compiled_forward(ours)
    with torch.no_grad():
        our_forward(images)
        reference(images)
        ref_s, our_s = _side_by_side(lambda: reference(images), lambda: our_forward(images), args.batches, device)
    print(f"inference  tutorial {BATCH / ref_s:7.0f} img/s   ours {BATCH / our_s:7.0f} img/s   ratio {ref_s / our_s:.2f}x")

    # The app's hot path: one digit through the full traced forward (eager, no compile).
    digit = images[:1]
    with torch.no_grad():
        ours(digit, trace=True)
        latencies = [_timed(lambda: ours(digit, trace=True), device) for _ in range(30)]
    print(f"one digit, full trace: median {1000 * statistics.median(latencies):.1f} ms "
          f"(p90 {1000 * sorted(latencies)[26]:.1f} ms; target <= 20 ms)")
    return 0
