"""Named training recipes: the tutorial's, and the faster ones this project found by measurement."""

from __future__ import annotations

from dataclasses import replace

from sae.training.loop import TrainConfig

RECIPES = {
    # The tutorial as written: AdamW lr 1e-4, batch 250, loss on the last step, 10 epochs.
    "tutorial": TrainConfig(epochs=10, lr=1e-4, batch_size=250, loss="last"),
    # One minute to better than the tutorial's result (checkpoints/README.md has what was tried):
    # small batches, a 60x larger learning rate, a 30-step warm-up and a cosine decay over the
    # time budget.  A short run is limited by its step count, and eager steps spend most of their
    # time in the LIF's element-wise work, so the LIF updates are fused, compiled before the clock
    # starts (sae.engine.compile_now).  `python -m sae train --time-budget 60` shows the result;
    # fused and eager runs side by side are in docs/performance.md.
    "fast": TrainConfig(
        epochs=50,
        time_budget=60.0,
        lr=6e-3,
        batch_size=32,
        loss="last",
        schedule="cosine",
        warmup_steps=30,
        eval_images=256,
        eval_every_s=20.0,
        compile=True,
    ),
    # The shipped checkpoint: four epochs at half the rate, a 100-step warm-up, LIF updates fused.
    "shipped": TrainConfig(epochs=4, lr=3e-3, batch_size=32, loss="last", schedule="cosine", warmup_steps=100, compile=True),
}
# The Compare page's "trained with this setting" models: one recipe for every setting, one full
# epoch (1,875 steps of 32), so the comparison is fair (checkpoints/README.md).
# The calibrated start (sae.training.calibration) helps the settings far from the tutorial's, where
# its initialisation leaves layers silent (`python -m benchmarks.start_table`; the model card's table).
RECIPES["compare"] = TrainConfig(epochs=1, lr=3e-3, batch_size=32, loss="last", schedule="cosine", warmup_steps=100, compile=True, calibrate=True)
# The Train page's "Longer" preset: the fast recipe given five times the time, with
# epochs enough to fill it.
RECIPES["longer"] = replace(RECIPES["fast"], epochs=5 * RECIPES["fast"].epochs, time_budget=5 * RECIPES["fast"].time_budget)


def make_train_config(recipe: str, **overrides) -> TrainConfig:
    """A recipe with some settings replaced; ``None`` values keep the recipe's."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}: choose one of {', '.join(sorted(RECIPES))}")
    return replace(RECIPES[recipe], **{k: v for k, v in overrides.items() if v is not None})
