"""``python -m benchmarks.neighbour``: what a training process on the other core costs a page's work by itself.

The Explore page's work, one thread pinned to CPU 0: one digit through the traced
forward (the forward process's share of a slider move) and a plain Python loop (the
server's share).  Timed alone, then with a training step loop pinned to CPU 1 at the
worker's niceness (sae.runs.worker), alternating, so the machine's drift falls on both.
No scheduler decision is left to make: whatever slows the pinned work is what the two
cores share (caches, memory, the clock).  Needs 2 or more CPUs; runs about a minute.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import torch

from sae.model import SpikingAutoencoder
from sae.runs.worker import ProcessSettings

TRAINING_LOOP = (
    "import os, sys, torch, torch.nn.functional as F\n"
    "os.sched_setaffinity(0, {1}); os.nice(int(sys.argv[1])); torch.set_num_threads(1)\n"
    "from sae.model import SpikingAutoencoder\n"
    "model = SpikingAutoencoder(); optimizer = torch.optim.AdamW(model.parameters(), 6e-3)\n"
    "images = torch.rand(32, 1, 32, 32)  # the One-minute recipe's batch\n"
    "while True:\n"
    "    optimizer.zero_grad(); F.mse_loss(model(images), images).backward(); optimizer.step()\n"
)


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.neighbour", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4, help="alternations of alone / beside (each about 8 s)")
    args = parser.parse_args(argv)
    if (os.cpu_count() or 1) < 2:
        print("needs 2 or more CPUs")
        return 1
    os.sched_setaffinity(0, {0})
    torch.set_num_threads(1)
    model, digit = SpikingAutoencoder().eval(), torch.rand(1, 1, 32, 32)

    def forward_work():
        with torch.no_grad():
            for _ in range(20):
                model(digit, trace=True)

    def python_work():
        table = {}
        for i in range(300_000):
            table[i % 1000] = str(i)

    nice = ProcessSettings.from_env().nice
    figures = {"alone": ([], []), f"training on CPU 1 (nice +{nice})": ([], [])}
    for _ in range(args.rounds):
        for label, (forward_s, python_s) in figures.items():
            neighbour = None
            if label != "alone":
                neighbour = subprocess.Popen([sys.executable, "-c", TRAINING_LOOP, str(nice)])
                time.sleep(4)  # past its imports: training when the timing starts
            for _ in range(5):
                forward_s.append(_timed(forward_work))
                python_s.append(_timed(python_work))
            if neighbour is not None:
                neighbour.kill()
                neighbour.wait()
    base_forward, base_python = (statistics.median(v) for v in figures["alone"])
    for label, (forward_s, python_s) in figures.items():
        f, p = statistics.median(forward_s), statistics.median(python_s)
        print(
            f"{label:28s} 20 traced forwards {1000 * f:6.1f} ms ({f / base_forward:.2f}x)   Python loop {1000 * p:6.1f} ms ({p / base_python:.2f}x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
