"""Test MSE after a given number of optimizer steps, for a few learning rates and batch sizes.

For a time-limited run (the one-minute preset) what runs out is steps, so this is
the figure to compare recipes by.  Each run starts from the same seeded weights;
the held-out MSE is measured on the first 2,000 test images at each mark.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.recipe_steps lr=6e-3,bs=16 lr=3e-3,bs=32
    MARKS=100,200,500 .venv/bin/python -m benchmarks.recipe_steps lr=1e-2,bs=16

The training subset is batch x the last mark, so runs with other marks see the
batches in another order (a noticeable source of spread at 100-200 steps).
"""

import os
import sys
import time
from dataclasses import replace

from sae.data.mnist import mnist_tensors
from sae.model import SAEConfig
from sae.training.loop import BatchEnd, evaluate, seeded_model, train
from sae.training.recipes import RECIPES


def main(specs: list[str]) -> None:
    marks = tuple(int(m) for m in os.environ.get("MARKS", "100,150,200,300,400,500").split(","))
    train_images, _ = mnist_tensors(train=True)
    test_images, _ = mnist_tensors(train=False)
    held_out = test_images[:2000]
    for spec in specs:
        settings = dict(part.split("=") for part in spec.split(","))
        cfg = replace(
            RECIPES["fast"], time_budget=None, epochs=1, eval_every_s=1e9, lr=float(settings.get("lr", 6e-3)), batch_size=int(settings.get("bs", 16))
        )
        cfg = replace(cfg, train_subset=cfg.batch_size * max(marks))
        model = seeded_model(SAEConfig(), cfg.seed)
        results, training_s, last = [], 0.0, time.perf_counter()
        for event in train(SAEConfig(), cfg, train_images, test_images, model=model):
            if isinstance(event, BatchEnd) and event.step in marks:
                training_s += time.perf_counter() - last
                results.append(f"{event.step}:{evaluate(model, held_out)[0]:.4f}")
                last = time.perf_counter()
        print(f"{spec}  {max(marks) / training_s:.1f} steps/s  " + " ".join(results), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["lr=6e-3,bs=16"])
