"""``python -m benchmarks.engine_spread``: how far apart short training runs land that differ only in their seed.

The fast engine (first conv once, output layer once, fused LIF) computes the tutorial's
math in another fp32 order.  In spiking dynamics one flipped spike changes the whole
trajectory, so after a few hundred steps a fast run and a reference run from the same
seed are as far apart as runs from two seeds.  Whether the engines train alike is
therefore a question about distributions: this prints, for each seed, the test MSE of a
run on each engine, then each engine's mean and standard deviation over the seeds and
the standard deviation of the per-seed difference.  tests/test_engine.py derives its
tolerance from these figures (docs/performance.md has them).

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.engine_spread --seeds 16
    .venv/bin/python -m benchmarks.engine_spread --seeds 4 --steps 100,200,300

MSE statistics do not depend on the machine's load; only the run time does.
"""

from __future__ import annotations

import argparse
import statistics

import torch

from sae.data.mnist import mnist_tensors
from sae.model import SAEConfig
from sae.training.loop import BatchEnd, TrainConfig, evaluate, seeded_model, train

ENGINES = {"reference": {"engine": "reference", "compile": False}, "fast": {"engine": "fast", "compile": True}}
TEST_IMAGES = 1000


def run_config(engine: str, seed: int, steps: int) -> TrainConfig:
    """A short run at the One-minute recipe's learning rate, batch 16, constant rate: ``steps`` optimizer steps."""
    return TrainConfig(epochs=1, lr=6e-3, batch_size=16, train_subset=steps * 16, eval_images=100, eval_every_s=1e9, seed=seed, **ENGINES[engine])


def mse_after_steps(engine: str, seed: int, marks: tuple[int, ...], train_images: torch.Tensor, test_images: torch.Tensor) -> dict[int, float]:
    """Test MSE on the first ``TEST_IMAGES`` test images after each of ``marks`` optimizer steps, one run."""
    held_out, results = test_images[:TEST_IMAGES], {}
    model = seeded_model(SAEConfig(), seed)
    for event in train(SAEConfig(), run_config(engine, seed, max(marks)), train_images, test_images, model=model):
        if isinstance(event, BatchEnd) and event.step in marks:
            results[event.step], _ = evaluate(model, held_out)  # between steps: eval mode leaves the run as it was
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=16, help="seeds 0..N-1, each trained on both engines")
    parser.add_argument("--steps", default="300", help="comma-separated step counts at which to measure the test MSE")
    args = parser.parse_args()
    marks = tuple(sorted(int(s) for s in args.steps.split(",")))
    train_images, test_images = mnist_tensors(train=True)[0], mnist_tensors(train=False)[0]
    table = {engine: {} for engine in ENGINES}
    for seed in range(args.seeds):
        for engine in ENGINES:
            table[engine][seed] = mse_after_steps(engine, seed, marks, train_images, test_images)
        print(f"seed {seed:3d}  " + "  ".join(f"{e} {m}: {table[e][seed][m]:.5f}" for m in marks for e in ENGINES), flush=True)
    for mark in marks:
        ref = [table["reference"][s][mark] for s in range(args.seeds)]
        fast = [table["fast"][s][mark] for s in range(args.seeds)]
        diff = [f - r for f, r in zip(fast, ref)]
        print(
            f"{mark} steps, {args.seeds} seeds: reference {statistics.mean(ref):.5f} ± {statistics.stdev(ref):.5f} (sd), "
            f"fast {statistics.mean(fast):.5f} ± {statistics.stdev(fast):.5f}, "
            f"fast - reference per seed {statistics.mean(diff):+.5f} ± {statistics.stdev(diff):.5f}"
        )


if __name__ == "__main__":
    main()
