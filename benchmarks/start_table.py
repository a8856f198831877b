"""The start table of the model card: spike rates at step 0 and test MSE after 100, 300 and 1,000 steps.

For each setting (thresh, num_steps) it trains the One-minute recipe's settings
(AdamW lr 6e-3, batch 16, seed 0) from the tutorial's initialisation and from the
calibrated start (sae.training.calibration), and prints one markdown row per run: the spike rate of
every layer before the first step and the test MSE on the first 2,000 test images
at each mark.  Runs on one thread each, so two can share the 2-core machine:

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.start_table 0.5:5 1:5 2:5
    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.start_table 1:1 1:3 1:10
    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.start_table --calibrated-only 2:5   # one start only
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace

from sae.data.mnist import mnist_tensors
from sae.model import SPIKING_LAYERS, SAEConfig
from sae.training.calibration import layer_rates
from sae.training.loop import CALIBRATION_IMAGES, BatchEnd, evaluate, seeded_model, train
from sae.training.recipes import RECIPES

MARKS = (100, 300, 1000)


def row(thresh: float, num_steps: int, calibrate: bool, train_x, held_out) -> str:
    net = SAEConfig(thresh=thresh, num_steps=num_steps)
    cfg = replace(RECIPES["fast"], time_budget=None, epochs=1, eval_every_s=1e9, train_subset=16 * MARKS[-1], calibrate=calibrate)
    model = seeded_model(net, cfg.seed)
    rates, results, start = None, [], time.perf_counter()
    for event in train(net, cfg, train_x, held_out, model=model):
        if rates is None:  # the first event comes before the first step, after the calibration
            rates = layer_rates(model, train_x[:CALIBRATION_IMAGES])
        if isinstance(event, BatchEnd) and event.step in MARKS:
            results.append(f"{evaluate(model, held_out)[0]:.4f}")
    start_rates = " | ".join(f"{rates[n]:.2f}" for n in SPIKING_LAYERS)
    kind = "calibrated" if calibrate else "tutorial's init"
    return f"| {thresh:g} | {num_steps} | {kind} | {start_rates} | {' | '.join(results)} | {time.perf_counter() - start:.0f} |"


def main(settings: list[str], starts=(False, True)) -> None:
    train_x, _ = mnist_tensors(train=True)
    held_out = mnist_tensors(train=False)[0][:2000]
    print(f"| thresh | num_steps | start | {' | '.join(SPIKING_LAYERS)} | MSE@100 | MSE@300 | MSE@1000 | s |", flush=True)
    for setting in settings:
        thresh, num_steps = setting.split(":")
        for calibrate in starts:
            print(row(float(thresh), int(num_steps), calibrate, train_x, held_out), flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    only = "--calibrated-only" in args
    main([a for a in args if a != "--calibrated-only"] or ["1:5"], starts=(True,) if only else (False, True))
