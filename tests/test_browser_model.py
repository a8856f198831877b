"""The network as files a browser runs (sae/io/browser_model.py), held to the torch model.

The rule is calibrated (benchmarks/browser_equivalence.py): torch in float64 is the truth,
torch fp32's own ways of rounding give the spread, and the exported graphs run by
onnxruntime must stay within a small multiple of it, on real MNIST test digits, while
planted mistakes land far outside.  The shipped model is checked here; every compare
checkpoint in the ``slow`` test at the end.
"""

from __future__ import annotations

import os
import time

import numpy as np
import onnx
import pytest
import torch

from benchmarks import browser_equivalence as eq
from sae.data.mnist import mnist_tensors
from sae.io import browser_model as bm
from sae.io.checkpoints import SHIPPED_DIR, default_checkpoint_path, load_checkpoint
from sae.io.fingerprints import model_fingerprint
from sae.model import NeuronSettings, SAEConfig, SpikingAutoencoder

IMAGES = 32  # MNIST test digits per check; the benchmark's table uses 200
FAR_OUTSIDE = 10  # a planted mistake must exceed the rule's limit this many times on some metric


@pytest.fixture(scope="module")
def model() -> SpikingAutoencoder:
    return load_checkpoint(default_checkpoint_path()).model.eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return mnist_tensors(train=False)[0][:IMAGES]


@pytest.fixture(scope="module")
def graphs(model) -> tuple[bytes, bytes]:
    return bm.export_onnx(model)


@pytest.fixture(scope="module")
def sessions(model, graphs):
    return eq.onnx_sessions(model, lambda _: graphs)


@pytest.fixture(scope="module")
def limits(model, images) -> dict:
    """Per setting: the float64 truth and the rule's limit (torch's own spread, measured once)."""
    found = {}
    for setting in eq.SETTINGS:
        truth = eq.torch_run(model, images, setting, dtype=torch.float64)
        found[setting] = truth, eq.allowed(eq.torch_spread(model, images, setting, truth), truth, images)
    return found


def test_the_graphs_take_every_membrane_thresh_and_beta_and_any_batch(model, sessions):
    encoder, decoder = sessions
    shapes = bm.layer_shapes(model)
    assert [i.name for i in encoder.get_inputs()] == ["image", "mem_enc1", "mem_enc2", "mem_enc3", "mem_latent", "thresh", "beta"]
    decoder_inputs = ["latent_spikes", "mem_linear", "mem_dec0", "mem_dec1", "mem_dec2", "mem_output", "thresh", "beta"]
    assert [i.name for i in decoder.get_inputs()] == decoder_inputs
    for session, layers in ((encoder, bm.ENCODER_LAYERS), (decoder, bm.DECODER_LAYERS)):
        assert [o.name for o in session.get_outputs()] == bm.output_names(layers)
        inputs = {i.name: i.shape for i in session.get_inputs()}
        for name in layers:
            assert inputs[f"mem_{name}"][1:] == list(shapes[name])
            assert isinstance(inputs[f"mem_{name}"][0], str)  # a free batch axis
        assert inputs["thresh"] == inputs["beta"] == []
    for batch in (1, 3):  # one digit (the page) and several (the tests)
        run = eq.onnx_run(sessions, model, mnist_tensors(train=False)[0][:batch], (1.0, 0.5, 2))
        assert run.outputs.shape == (2, batch, 32, 32)


def test_encoder_and_decoder_steps_interleave_exactly_as_the_forward_runs_them(model, images):
    """The page decodes step t right after encoding it: step t's decoding needs only step t's latent spikes."""
    x = images[:16]
    with torch.no_grad():
        outputs, trace = model(x, settings=NeuronSettings(thresh=0.75, beta=0.8, num_steps=6), trace=True, every_step=True)
        enc_mem, dec_mem, interleaved = {}, {}, []
        first = model.first_layer(x)
        for _ in range(6):
            latent = model.encoder_step(first, enc_mem, beta=0.8, thresh=0.75)
            interleaved.append(model.decoder_step(latent, dec_mem, beta=0.8, thresh=0.75))
    assert torch.equal(torch.stack(interleaved), outputs)
    assert torch.equal(dec_mem["output"], trace.mem["output"][-1])


def test_the_exported_graphs_are_the_torch_model_within_the_calibrated_rule(model, images, sessions, limits):
    for setting, (truth, limit) in limits.items():
        found = eq.differences(eq.onnx_run(sessions, model, images, setting), truth, images)
        assert eq.within_rule(found, limit) == [], (setting, found, limit)
        assert truth.spikes["latent"].mean() > 0.01, setting  # the latent layer fires: spikes were compared, not silence


@pytest.mark.parametrize("mistake", list(eq.PLANTED))
def test_a_planted_mistake_lands_far_outside_the_rule(model, images, limits, mistake):
    wrong = eq.onnx_sessions(model, eq.PLANTED[mistake])
    setting = eq.SETTINGS[0]  # the trained settings: where a student starts
    truth, limit = limits[setting]
    found = eq.differences(eq.onnx_run(wrong, model, images, setting), truth, images)
    assert max(getattr(found, m) / getattr(limit, m) for m in eq.METRICS) > FAR_OUTSIDE, (found, limit)
    assert eq.within_rule(found, limit)


def test_the_rule_allows_one_flip_per_image_and_otherwise_scales_torchs_own_spread(images):
    truth = eq.Run({n: np.zeros((5, len(images), 10), np.uint8) for n in eq.SPIKING_LAYERS}, np.zeros((5, len(images), 32, 32)))
    none = eq.Differences(0.0, 0.0, 0.0)
    floor = eq.allowed(none, truth, images)
    cells = 5 * len(images) * 10 * len(eq.SPIKING_LAYERS)
    assert floor.flipped == pytest.approx(len(images) / cells)
    factor = eq.RULE_FACTOR
    assert eq.allowed(eq.Differences(0.1, 0.2, 0.3), truth, images) == eq.Differences(0.1 * factor, 0.2 * factor, 0.3 * factor)


# --- the files: made on demand, named by the weights, written atomically, bounded ------------


def test_files_are_made_once_per_weights_and_named_by_their_fingerprint(model, graphs, tmp_path):
    exports = []
    export = lambda m: exports.append(m) or graphs
    made = bm.browser_model(model, tmp_path, export)
    assert made.fingerprint == model_fingerprint(model)
    assert made.encoder.endswith("-encoder.onnx") and made.fingerprint in made.encoder
    for name in (made.encoder, made.decoder):
        onnx.checker.check_model(onnx.load(tmp_path / name))
    assert bm.browser_model(model, tmp_path, export) == made
    assert len(exports) == 1  # the second call found the files
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([made.encoder, made.decoder])  # no temporary files left


def test_other_weights_get_other_files_and_the_least_recently_used_go_beyond_the_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(bm, "KEPT_MODELS", 2)
    export = lambda m: (b"encoder", b"decoder")
    models, made = [], []
    for seed in range(3):
        torch.manual_seed(seed)
        models.append(SpikingAutoencoder(SAEConfig(latent_dim=4)).eval())
        made.append(bm.browser_model(models[-1], tmp_path, export))
        for name in (made[-1].encoder, made[-1].decoder):  # one second apart: file times can be coarse
            os.utime(tmp_path / name, (time.time() - 100 + seed,) * 2)
    assert len({m.fingerprint for m in made}) == 3
    assert {p.name for p in tmp_path.iterdir()} == {made[1].encoder, made[1].decoder, made[2].encoder, made[2].decoder}
    bm.browser_model(models[1], tmp_path, export)  # used again: now the newest
    bm.browser_model(models[0], tmp_path, export)  # made again; the bound drops models[2], the least recently used
    assert {p.name for p in tmp_path.iterdir()} == {made[0].encoder, made[0].decoder, made[1].encoder, made[1].decoder}


def test_the_export_runs_the_model_in_eval_mode_and_leaves_the_callers_model_alone(graphs):
    live = load_checkpoint(default_checkpoint_path()).model.train()
    before = [b.clone() for b in live.buffers()]
    encoder, _ = bm.export_onnx(live)
    assert live.training and all(torch.equal(a, b) for a, b in zip(before, live.buffers()))
    assert encoder == graphs[0]  # the same graph as from the model in eval mode


@pytest.mark.slow
def test_the_export_in_a_child_process_makes_the_same_bytes_and_says_why_it_failed(model, graphs, monkeypatch):
    """The app exports in a child (the exporter would hold the server's GIL for seconds)."""
    assert bm.export_onnx_in_child(model) == graphs  # one name, one content, whichever process made it
    monkeypatch.setattr(bm, "EXPORT_TIMEOUT_S", 0.01)
    with pytest.raises(bm.ExportError, match="longer than"):
        bm.export_onnx_in_child(model)


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(SHIPPED_DIR.glob("compare_*.pt")), ids=lambda p: p.stem)
def test_every_compare_checkpoint_is_within_the_rule(path, images):
    model = load_checkpoint(path).model.eval()
    sessions = eq.onnx_sessions(model)
    for setting in eq.SETTINGS:
        truth = eq.torch_run(model, images, setting, dtype=torch.float64)
        limit = eq.allowed(eq.torch_spread(model, images, setting, truth), truth, images)
        found = eq.differences(eq.onnx_run(sessions, model, images, setting), truth, images)
        assert eq.within_rule(found, limit) == [], (setting, found, limit)
