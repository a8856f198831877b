"""One CSV writer for every table the app and the command line export."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable


def csv_text(rows: Iterable[dict], columns: list[str] | None = None) -> str:
    """Rows of plain values as CSV text.  ``columns`` fixes the order (default: the first row's keys);
    a row may leave columns out (written empty).  Floats keep every digit (``repr``)."""
    rows = list(rows)
    columns = columns or (list(rows[0]) if rows else [])
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
    return out.getvalue()


def raster_csv(spikes) -> str:
    """A spike raster ``[T, neurons]`` as CSV: one row per neuron, one 0/1 column per step (step_1 first)."""
    steps = len(spikes)
    columns = ["neuron"] + [f"step_{t + 1}" for t in range(steps)]
    rows = [{"neuron": n, **{f"step_{t + 1}": int(spikes[t][n]) for t in range(steps)}} for n in range(len(spikes[0]))]
    return csv_text(rows, columns)


def history_csv(history: dict) -> str:
    """The history as one CSV: a row per batch, per held-out evaluation and per epoch (column ``kind``)."""
    evals, batch, epochs = history.get("evals", {}), history.get("batch", {}), history.get("epochs", {})
    rate_columns = [k for k in evals if k.startswith("rate_")]
    columns = ["kind", "step", "epoch", "elapsed_s", "batch_loss", "test_loss", "train_loss", *rate_columns]
    rows = [
        {"kind": "batch", "step": step, "elapsed_s": round(elapsed, 3), "batch_loss": loss}
        for step, loss, elapsed in zip(batch.get("step", []), batch.get("loss", []), batch.get("elapsed", []))
    ]
    rows += [
        {
            "kind": "eval",
            "step": step,
            "epoch": round(evals["epoch"][i], 4),
            "elapsed_s": round(evals["elapsed"][i], 3),
            "test_loss": evals["test_loss"][i],
            **{k: evals[k][i] for k in rate_columns},
        }
        for i, step in enumerate(evals.get("step", []))
    ]
    rows += [
        {"kind": "epoch", "epoch": epoch, "train_loss": train_loss, "test_loss": test_loss}
        for epoch, train_loss, test_loss in zip(epochs.get("epoch", []), epochs.get("train_loss", []), epochs.get("test_loss", []))
    ]
    return csv_text(rows, columns)
