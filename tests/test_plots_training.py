"""sae.plots.training: the live training figures."""

import base64

import numpy as np
import torch

from sae.plots import training as charts


def decoded(data) -> np.ndarray:
    if isinstance(data, dict):
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=np.dtype(data["dtype"]))
    return np.asarray(data)


def history(batches: int, evals: int = 3) -> dict:
    rates = {f"rate_{name}": [0.1 * i for i in range(evals)] for name in charts.SPIKING_LAYERS}
    return {
        "batch": {
            "step": list(range(1, batches + 1)),
            "loss": [1.0 / s for s in range(1, batches + 1)],
            "elapsed": [0.1 * s for s in range(batches)],
        },
        "evals": {"step": list(range(evals)), "epoch": [0.0] * evals, "test_loss": [0.5] * evals, "elapsed": [0.0] * evals, **rates},
        "epochs": {"epoch": [1], "train_loss": [0.2], "test_loss": [0.3]},
    }


def test_moving_average_is_a_trailing_mean():
    assert np.allclose(charts.moving_average([1, 2, 3, 4], window=2), [1, 1.5, 2.5, 3.5])
    assert charts.moving_average([], window=3).size == 0


def test_the_loss_figure_thins_long_runs_but_keeps_the_last_point():
    fig = charts.loss_figure(history(5000), {"tutorial": 0.05})
    batch = fig.to_plotly_json()["data"][0]
    steps = decoded(fig.data[0].x)
    assert batch["name"] == "batch loss" and len(steps) <= charts.MAX_POINTS and steps[-1] == 5000
    average = decoded(fig.data[1].y)
    assert np.isclose(average[-1], np.mean([1.0 / s for s in range(4981, 5001)]))
    assert fig.layout.yaxis.type == "log" and fig.layout.uirevision == "loss"


def test_empty_history_draws_waiting_figures():
    empty = {
        "batch": {"step": [], "loss": [], "elapsed": []},
        "evals": {"step": [], "test_loss": []},
        "epochs": {"epoch": [], "train_loss": [], "test_loss": []},
    }
    for fig in (charts.loss_figure(empty), charts.spike_rate_figure(empty), charts.epoch_figure(empty)):
        assert fig.layout.annotations  # "waiting for…"


def test_spike_rates_have_a_line_per_spiking_layer():
    fig = charts.spike_rate_figure(history(10))
    assert [t.name for t in fig.data] == list(charts.SPIKING_LAYERS)


def test_reconstruction_grid_puts_digits_above_their_reconstructions_as_bytes():
    inputs = torch.zeros(3, 1, 32, 32)
    recon = torch.full((3, 1, 32, 32), 2.0)  # out of range: clipped
    z = np.asarray(charts.reconstruction_grid(inputs, recon).data[0].z)
    assert z.dtype == np.uint8 and z.shape == (2 * 32 + charts.GAP, 3 * 32 + 2 * charts.GAP)
    assert (z[:32, :32] == 0).all() and (z[32 + charts.GAP :, :32] == 254).all()
