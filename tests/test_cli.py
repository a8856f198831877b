"""``python -m sae train | eval`` end to end on a small subset: real figures, clear errors."""

import re

import pytest
import torch

from sae.__main__ import main
from sae.io.checkpoints import load_checkpoint


@pytest.mark.slow  # measures the whole 10,000-image test set
def test_train_then_eval_print_real_figures_and_save_a_loadable_checkpoint(tmp_path, capsys):
    out = tmp_path / "tiny.pt"
    assert main(["train", "--epochs", "1", "--train-subset", "96", "--batch-size", "32", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    trained_mse = float(re.search(r"test MSE on all 10000 test images: ([0-9.]+)", printed).group(1))
    assert "finished (completed) after 3 steps, 96 images" in printed  # one whole epoch: the time limit was dropped
    ckpt = load_checkpoint(out)
    assert ckpt.metrics["test_mse"] == pytest.approx(trained_mse, abs=1e-4)
    assert ckpt.provenance["seed"] == 0 and "--train-subset 96" in ckpt.provenance["command"]

    assert main(["eval", "--checkpoint", str(out)]) == 0
    printed = capsys.readouterr().out
    assert float(re.search(r"test MSE on all 10000 test images: ([0-9.]+)", printed).group(1)) == pytest.approx(trained_mse, abs=1e-4)
    rates = dict(re.findall(r"^\s+(\w+)\s+([0-9.]+)$", printed, flags=re.M))
    assert set(rates) == {"enc1", "enc2", "enc3", "latent", "linear", "dec0", "dec1", "dec2"}
    assert all(0 <= float(r) <= 1 for r in rates.values())


def test_a_missing_device_and_a_bad_checkpoint_get_one_line_errors(tmp_path, capsys):
    if not torch.cuda.is_available():
        assert main(["train", "--device", "cuda", "--train-subset", "32", "--out", str(tmp_path / "x.pt")]) == 2
        assert "device 'cuda' is not available" in capsys.readouterr().err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["eval", "--checkpoint", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err
    assert not (tmp_path / "x.pt").exists()


@pytest.mark.slow  # measures the whole 10,000-image test set
def test_init_starts_from_a_checkpoints_weights_and_refuses_other_settings(tmp_path, capsys):
    out = tmp_path / "warm.pt"
    shipped = "checkpoints/sae_mnist.pt"
    # One tiny step from the shipped weights: a model this good cannot come from a fresh start in one step.
    args = ["train", "--init", shipped, "--epochs", "1", "--train-subset", "32", "--batch-size", "32", "--lr", "1e-6", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert float(re.search(r"test MSE on all 10000 test images: ([0-9.]+)", printed).group(1)) < 0.03
    start, recorded = load_checkpoint(shipped).provenance, load_checkpoint(out).provenance["init"]
    assert recorded["path"] == shipped and recorded["command"] == start["command"]
    assert recorded.get("init") == start.get("init")  # the start's own chain of warm restarts comes along

    assert main(["train", "--init", shipped, "--thresh", "2", "--out", str(tmp_path / "other.pt")]) == 2
    err = capsys.readouterr().err
    assert "give the same model flags" in err and "\n" not in err.strip()
    assert not (tmp_path / "other.pt").exists()
