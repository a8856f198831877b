"""The forward child process gives what the in-process forward gives, and never takes the page down with it."""

import numpy as np
import pytest
import torch

from sae.analysis.inference import run_digit
from sae.model import NeuronSettings, SAEConfig, SpikingAutoencoder
from sae.runs import forward_process
from sae.runs.forward_process import ForwardWorker


def make_model(seed: int, **config) -> SpikingAutoencoder:
    torch.manual_seed(seed)
    model = SpikingAutoencoder(SAEConfig(**config))
    with torch.no_grad():  # weights that make spikes flow, so the comparison means something
        for p in model.parameters():
            p.mul_(3.0)
    return model.eval().requires_grad_(False)


def same(a, b) -> bool:
    return (
        all(np.array_equal(a.mem[k], b.mem[k]) and np.array_equal(a.spikes[k], b.spikes[k]) for k in a.mem)
        and np.array_equal(a.recon_steps, b.recon_steps)
        and (a.settings, a.num_steps, a.mse) == (b.settings, b.num_steps, b.mse)
    )


@pytest.fixture
def worker():
    w = ForwardWorker()
    assert w.start()
    yield w
    w.close()


def test_child_results_equal_in_process_bit_for_bit(worker):
    models = [make_model(0), make_model(1, latent_dim=16)]
    digit = torch.rand(1, 1, 32, 32)
    for model in models:
        for settings in (None, NeuronSettings(thresh=0.4, beta=0.9, num_steps=7)):
            here, there = run_digit(model, digit, settings), worker.run_digit(model, digit, settings)
            assert same(here, there) and there.settings == (settings or model.config.neuron_settings())
            assert there.spikes["latent"].sum() > 0
    assert worker._process is not None and worker._process.poll() is None  # it really ran in the child
    assert len(worker._loaded) == 2


def test_a_bad_request_raises_as_in_process_and_the_child_lives_on(worker):
    model = make_model(0)
    with pytest.raises(ValueError, match=r"\[1, 1, H, W\]"):
        worker.run_digit(model, torch.rand(2, 1, 32, 32))
    process = worker._process
    digit = torch.rand(1, 1, 32, 32)
    assert same(worker.run_digit(model, digit), run_digit(model, digit)) and worker._process is process


def test_a_killed_child_is_replaced_and_the_forward_still_answers(worker):
    model, digit = make_model(0), torch.rand(1, 1, 32, 32)
    worker.run_digit(model, digit)
    worker._process.kill()
    worker._process.wait()
    assert same(worker.run_digit(model, digit), run_digit(model, digit))  # in-process while a new child starts
    assert worker.start()
    assert same(worker.run_digit(model, digit), run_digit(model, digit))
    assert worker._loaded  # in the new child


def test_forwards_do_not_wait_for_a_starting_child():
    w = ForwardWorker()
    try:
        model, digit = make_model(0), torch.rand(1, 1, 32, 32)
        assert same(w.run_digit(model, digit), run_digit(model, digit))  # the child is importing torch meanwhile
        assert w._process is not None and not w._loaded
    finally:
        w.close()


def test_turned_off_by_the_environment(monkeypatch):
    monkeypatch.setenv("SAE_FORWARD_PROCESS", "0")
    w = ForwardWorker()
    model, digit = make_model(0), torch.rand(1, 1, 32, 32)
    assert same(w.run_digit(model, digit), run_digit(model, digit))
    assert w._process is None
    assert not forward_process.enabled()
