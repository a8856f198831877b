"""``python -m benchmarks.engine``: the tutorial's code and this project's engine, side by side.

Both run on the same batches in the same process, alternating, so a busy machine
slows both alike; the ratio is what to read.  The tutorial's code is
``benchmarks/tutorial_sae.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from benchmarks import tutorial_sae as tutorial
from sae.devices import resolve_device
from sae.engine import compiled, fast_train_step, fuse
from sae.model import SpikingAutoencoder

BATCH = 250


def _timed(fn, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def _side_by_side(fns, rounds: int, device) -> list[float]:
    """Median seconds per call of each function, called in turn: a, b, c, a, b, c, ..."""
    times = [[] for _ in fns]
    for _ in range(rounds):
        for fn, spent in zip(fns, times):
            spent.append(_timed(fn, device))
    return [statistics.median(t) for t in times]


TRAIN_LABELS = (
    "tutorial's code",
    "ours, first conv once, fused LIF (default)",
    "ours, first conv once, eager",
    "ours, tutorial's loops, fused LIF (bit-exact)",
    "ours, tutorial's loops, whole model compiled",
    "ours, first conv once, whole model compiled",
)
INFERENCE_LABELS = ("tutorial's code", "ours, fused LIF, bit-exact (default)", "ours, whole model compiled")


def _report(title: str, labels, seconds: list[float]) -> None:
    """One line per contender, with its speed-up over the tutorial's code (the first)."""
    print(title)
    for label, spent in zip(labels, seconds):
        print(f"  {label:<52} {BATCH / spent:7.0f} img/s   ratio {seconds[0] / spent:4.2f}x")


def run_bench(args) -> int:
    device = resolve_device(args.device)
    torch.manual_seed(0)
    images = torch.rand(BATCH, 1, 32, 32, device=device)
    reference = tutorial.build_tutorial_sae().to(device)
    ours = [SpikingAutoencoder().to(device) for _ in TRAIN_LABELS[1:]]
    for model in ours:
        model.load_state_dict(reference.state_dict())
    print(f"device {device}, {torch.get_num_threads()} threads, batch {BATCH}, num_steps 5, fp32, median of {args.batches} alternating rounds")

    # Training: one optimizer step per call (forward, MSE, backward, AdamW).
    ref_opt = tutorial.tutorial_optimizer(reference)
    fast, fast_eager, step_major, whole, whole_fast = ours
    fast_steps = [
        fast_train_step(fast, tutorial.tutorial_optimizer(fast)),
        fast_train_step(fast_eager, tutorial.tutorial_optimizer(fast_eager), fused=False),
        fast_train_step(step_major, tutorial.tutorial_optimizer(step_major), engine="reference"),
        fast_train_step(whole, tutorial.tutorial_optimizer(whole), engine="reference", whole=True),
        fast_train_step(whole_fast, tutorial.tutorial_optimizer(whole_fast), whole=True),
    ]
    steps = [lambda: tutorial.tutorial_train_step(reference, ref_opt, images)]
    steps += [lambda s=s: s(images) for s in fast_steps]
    print("compiling (cached on disk after the first run)…", flush=True)
    t0 = time.perf_counter()
    for step in steps:
        step()
    print(f"  warm-up took {time.perf_counter() - t0:.1f} s")
    _report("training (batch 250)", TRAIN_LABELS, _side_by_side(steps, args.batches, device))

    # Inference: the forward alone, eval mode, no gradients.
    exact, full = fuse(step_major).eval(), whole.eval()
    reference.eval()
    forwards = [reference, exact, compiled(full)]
    with torch.no_grad():
        for forward in forwards:
            forward(images)
        seconds = _side_by_side([lambda f=f: f(images) for f in forwards], args.batches, device)
    _report("inference (batch 250)", INFERENCE_LABELS, seconds)

    # The app's hot path: one digit through the full traced forward (eager, no compile).
    digit, eager = images[:1], SpikingAutoencoder().to(device).eval()
    eager.load_state_dict(reference.state_dict())
    with torch.no_grad():
        eager(digit, trace=True)
        latencies = [_timed(lambda: eager(digit, trace=True), device) for _ in range(30)]
    print(
        f"one digit, full trace, eager: median {1000 * statistics.median(latencies):.1f} ms "
        f"(p90 {1000 * sorted(latencies)[26]:.1f} ms; target <= 20 ms)"
    )
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.engine", description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=6, help="timed batches per measurement")
    parser.add_argument("--device", default="cpu")
    return run_bench(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
