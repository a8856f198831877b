"""The decoder as a function (encode / decode) and the Latent lab's tools: edits, the code's
text form, what each neuron draws, the blend, the map of codes."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from sae.analysis import latent
from sae.data.mnist import mnist_tensors
from sae.io.checkpoints import default_checkpoint_path, load_checkpoint
from sae.model import LAYER_NAMES, SAEConfig, SpikingAutoencoder


@pytest.fixture(scope="module")
def model():
    """The shipped checkpoint (every layer fires on MNIST); eval mode."""
    return load_checkpoint(default_checkpoint_path()).model.eval()


@pytest.fixture(scope="module")
def digits():
    images, labels = mnist_tensors(train=False)
    return images[:16], labels[:16]


CHANGES = [None, {"thresh": 0.7}, {"beta": 0.8, "num_steps": 7}, {"thresh": 1.3, "beta": 0.3, "num_steps": 3}]


@pytest.mark.parametrize("changes", CHANGES)
def test_decode_of_encode_is_forward_bit_for_bit(model, digits, changes):
    images, _ = digits
    settings = None if changes is None else model.config.neuron_settings(**changes)
    with torch.no_grad():
        expected, trace = model(images, every_step=True, trace=True, settings=settings)
        latent_spikes, enc = model.encode(images, trace=True, settings=settings)
        out, dec = model.decode(latent_spikes, trace=True, settings=settings)
    steps = (changes or {}).get("num_steps", 5)
    assert latent_spikes.shape == (steps, 16, 32) and out.shape == (steps, 16, 1, 32, 32)
    assert set(latent_spikes.unique().tolist()) <= {0.0, 1.0} and latent_spikes.sum() > 0
    assert torch.equal(out, expected)
    assert torch.equal(latent_spikes, trace.spikes["latent"])
    assert list(enc.spikes) == list(LAYER_NAMES[:4]) and list(dec.spikes) == list(LAYER_NAMES[4:])
    for name in LAYER_NAMES:
        part = enc if name in enc.spikes else dec
        assert torch.equal(part.spikes[name], trace.spikes[name]), name
        assert torch.equal(part.mem[name], trace.mem[name]), name


def test_decode_of_encode_is_forward_in_train_mode_too():
    torch.manual_seed(0)
    model = SpikingAutoencoder().train()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3)  # so spikes flow at initialisation
    x = torch.rand(8, 1, 32, 32)
    torch.manual_seed(1)
    expected = model(x, every_step=True)
    assert torch.equal(model.decode(model.encode(x)), expected)


def test_decode_runs_only_the_decoder_once_per_step(model):
    calls = {"encoder": 0, "from_latent": 0, "deconv3": 0}

    def counter(name):
        return lambda *_: calls.__setitem__(name, calls[name] + 1)

    hooks = [m.register_forward_hook(counter("encoder")) for m in model.encoder]
    hooks += [model.layers[name].register_forward_hook(counter(name)) for name in ("from_latent", "deconv3")]
    try:
        model.decode(torch.zeros(6, 2, 32))
    finally:
        for h in hooks:
            h.remove()
    assert calls == {"encoder": 0, "from_latent": 6, "deconv3": 6}


def test_decode_refuses_bad_input_with_a_clear_message(model):
    with pytest.raises(ValueError, match=r"\[T, B, 32\]"):
        model.decode(torch.zeros(5, 32))
    with pytest.raises(ValueError, match=r"\[T, B, 32\]"):
        model.decode(torch.zeros(5, 1, 16))
    with pytest.raises(ValueError, match="num_steps"):
        model.decode(torch.zeros(51, 1, 32))


def test_decode_is_thread_safe_on_one_instance(model):
    torch.manual_seed(3)
    codes = [(torch.rand(5, 4, 32) < 0.3).float() for _ in range(8)]
    with torch.no_grad():
        serial = [model.decode(c, settings=model.config.neuron_settings(thresh=0.5 + 0.1 * i)) for i, c in enumerate(codes)]
    results = [None] * len(codes)

    def work(i):
        with torch.no_grad():
            for _ in range(3):
                results[i] = model.decode(codes[i], settings=model.config.neuron_settings(thresh=0.5 + 0.1 * i))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(codes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(torch.equal(a, b) for a, b in zip(results, serial))


# --- the lab's tools ---------------------------------------------------------------------


def test_encode_digit_and_decode_codes_agree_with_the_model(model, digits):
    images, _ = digits
    settings = model.config.neuron_settings(thresh=0.9)
    own = latent.encode_digit(model, images[:1], settings)
    with torch.no_grad():
        expected = model(images[:1], settings=settings)[0, 0].numpy()
    assert own.code.shape == (32, 5) and own.code.dtype == np.uint8
    assert np.array_equal(own.recon, expected)
    assert np.array_equal(latent.decode_codes(model, own.code, settings).images[0], expected)
    assert set(own.spikes) == set(LAYER_NAMES[:-1])
    # Several codes in one pass give each code's own answer (to rounding: a batch sums in another order).
    other = latent.encode_digit(model, images[1:2], settings)
    both = latent.decode_codes(model, np.stack([own.code, other.code]), settings).images
    assert np.allclose(both[1], other.recon, atol=1e-5) and np.allclose(both[0], expected, atol=1e-5)
    assert not np.allclose(both[0], both[1], atol=1e-2)


def test_edits_flip_silence_and_fire_one_cell_or_row():
    code = np.zeros((4, 3), np.uint8)
    flipped = latent.flip(code, 2, 1)
    assert flipped[2, 1] == 1 and flipped.sum() == 1 and code.sum() == 0  # a copy
    assert latent.flip(flipped, 2, 1).sum() == 0
    assert latent.set_neuron(code, 3, firing=True)[3].tolist() == [1, 1, 1]
    assert latent.set_neuron(np.ones((4, 3), np.uint8), 0, firing=False).sum() == 9
    with pytest.raises(ValueError, match="neuron 4, step 0"):
        latent.flip(code, 4, 0)


def test_code_text_round_trips_and_explains_what_is_wrong():
    rng = np.random.default_rng(0)
    code = (rng.random((32, 5)) < 0.4).astype(np.uint8)
    text = latent.code_to_text(code)
    assert text.startswith("32x5-") and len(text) == len("32x5-") + 40
    assert np.array_equal(latent.code_from_text(text, 32, 5), code)
    odd = (rng.random((3, 3)) < 0.5).astype(np.uint8)  # 9 bits: 2 bytes, 7 padding bits
    assert np.array_equal(latent.code_from_text(latent.code_to_text(odd), 3, 3), odd)
    with pytest.raises(ValueError, match="form"):
        latent.code_from_text("hello", 32, 5)
    with pytest.raises(ValueError, match="32 x 5"):
        latent.code_from_text(text, 32, 6)
    with pytest.raises(ValueError, match="40 hex digits, it has 38"):
        latent.code_from_text(text[:-2], 32, 5)
    with pytest.raises(ValueError, match="past its last cell"):
        latent.code_from_text("3x3-ffff", 3, 3)


def test_neuron_atlas_decodes_each_neuron_alone_and_toggled(model, digits):
    images, _ = digits
    own = latent.encode_digit(model, images[:1])
    atlas = latent.neuron_atlas(model, own)
    fired = own.code.any(axis=1)
    assert np.array_equal(atlas.added, ~fired) and fired.any() and (~fired).any()
    for n in (int(np.flatnonzero(fired)[0]), int(np.flatnonzero(~fired)[0])):
        alone = np.zeros_like(own.code)
        alone[n] = 1
        toggled = own.code.copy()
        toggled[n] = 0 if fired[n] else 1
        expected_alone, expected_toggled = latent.decode_codes(model, np.stack([alone, toggled])).images
        assert np.allclose(atlas.alone[n], expected_alone, atol=1e-5)
        assert np.allclose(atlas.change[n], expected_toggled - own.recon, atol=1e-5)
        assert np.isclose(atlas.effect[n], np.mean((expected_toggled - own.recon) ** 2), atol=1e-7)


def test_blend_goes_from_a_to_b_one_whole_spike_train_at_a_time():
    a = np.zeros((6, 4), np.uint8)
    b = a.copy()
    b[0] = [1, 0, 0, 0]  # differs in 1 cell
    b[2] = [1, 1, 1, 1]  # 4 cells
    b[3] = [0, 1, 1, 0]  # 2 cells
    b[5] = [1, 1, 0, 0]  # 2 cells (ties with 3: lower number first)
    stages = latent.blend(a, b, stages=5)
    assert stages.shape == (5, 6, 4) and np.array_equal(stages[0], a) and np.array_equal(stages[-1], b)
    # Stage s takes B's rows for the first s*4/4 of [2, 3, 5, 0] (most different first).
    taken = [[n for n in range(6) if np.array_equal(stages[s, n], b[n]) and not np.array_equal(a[n], b[n])] for s in range(5)]
    assert taken == [[], [2], [2, 3], [2, 3, 5], [0, 2, 3, 5]]
    assert np.array_equal(latent.blend(a, b, stages=5), stages)  # deterministic
    eight = latent.blend(a, b)
    assert len(eight) == latent.BLEND_STAGES == 8
    distance = [(s != a).sum() for s in eight]
    assert distance == sorted(distance) and distance[-1] == (a != b).sum()
    with pytest.raises(ValueError, match="shape"):
        latent.blend(a, b[:, :3])


def test_code_map_is_a_pca_of_the_spike_counts_and_is_cached_on_disk(model, tmp_path):
    images, labels = mnist_tensors(train=False)
    images, labels = images[:300], labels[:300]
    cmap = latent.cached_code_map(model, images, labels, tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    with torch.no_grad():
        counts = model.encode(images).sum(0).numpy()
    assert np.array_equal(cmap.counts, counts) and cmap.counts.max() <= 5
    centred = counts - counts.mean(0)
    assert np.allclose(cmap.xy, centred @ cmap.components.T, atol=1e-4)
    assert np.allclose(cmap.components @ cmap.components.T, np.eye(2), atol=1e-5)
    # PC 1 carries the most variance of any direction, PC 2 the most of what is left.
    variance = np.var(centred @ cmap.components.T, axis=0)
    eigen = np.sort(np.linalg.eigvalsh(np.cov(centred.T, bias=True)))[::-1]
    assert np.allclose(variance, eigen[:2], rtol=1e-4)
    assert np.allclose(cmap.explained, eigen[:2] / eigen.sum(), rtol=1e-4)
    assert np.allclose(cmap.project(counts[:3]), cmap.xy[:3], atol=1e-4)
    assert np.allclose(cmap.project(counts[:3] * 2, num_steps=10), cmap.xy[:3], atol=1e-4)  # rescaled to 5 steps
    nearest, label, share = cmap.neighbours(counts[7])
    assert 7 in nearest and 0 < share <= 1 and label in range(10)
    again = latent.cached_code_map(model, images, labels, tmp_path)  # read back from the file
    assert np.array_equal(again.xy, cmap.xy) and again.settings == model.config.neuron_settings() == cmap.settings


def test_the_map_folder_keeps_only_the_most_recently_used_maps(model, tmp_path, monkeypatch):
    monkeypatch.setattr(latent, "MAP_FILES_KEPT", 2)
    images, labels = mnist_tensors(train=False)
    for thresh in (0.8, 0.9, 1.0):
        latent.cached_code_map(model, images[:20], labels[:20], tmp_path, model.config.neuron_settings(thresh=thresh))
    names = sorted(p.name for p in tmp_path.glob("*.npz"))
    assert len(names) == 2 and not any("-0.8-" in n for n in names)


def test_a_damaged_map_file_is_rebuilt(model, tmp_path):
    images, labels = mnist_tensors(train=False)
    first = latent.cached_code_map(model, images[:50], labels[:50], tmp_path)
    (path,) = tmp_path.glob("*.npz")
    path.write_bytes(b"not a zip")
    again = latent.cached_code_map(model, images[:50], labels[:50], tmp_path)
    assert np.array_equal(again.xy, first.xy)


def test_a_model_of_another_size_has_codes_of_its_size():
    torch.manual_seed(0)
    model = SpikingAutoencoder(SAEConfig(latent_dim=8, num_steps=3)).eval()
    own = latent.encode_digit(model, torch.rand(1, 1, 32, 32))
    assert own.code.shape == (8, 3)
    assert latent.decode_codes(model, np.ones((2, 8, 3), np.uint8)).images.shape == (2, 32, 32)


def test_decode_runs_the_codes_own_steps_at_the_settings_thresh_and_beta(model):
    code = (torch.rand(4, 2, 32, generator=torch.Generator().manual_seed(5)) < 0.4).float()
    with torch.no_grad():
        same = model.decode(code, settings=model.config.neuron_settings(thresh=0.8, num_steps=9))
        assert same.shape[0] == 4 and torch.equal(same, model.decode(code, settings=model.config.neuron_settings(thresh=0.8)))
        assert not torch.equal(same, model.decode(code))


# --- what a picture looks like ------------------------------------------------------------


def test_the_nearest_class_mean_is_the_class_whose_average_is_closest():
    images = torch.zeros(6, 1, 2, 2)
    images[3:, 0, 0, 0] = 1.0  # class 1: a bright top-left pixel
    images[5, 0, 1, 1] = 0.5
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    means = latent.class_means(images, labels, classes=2)
    assert means.shape == (2, 2, 2) and means[1, 0, 0] == 1.0 and means[1, 1, 1] == pytest.approx(0.5 / 3)
    pictures = np.array([[[0.1, 0.0], [0.0, 0.0]], [[0.9, 0.0], [0.0, 0.2]]])
    assert latent.nearest_class(pictures, means).tolist() == [0, 1]
    assert latent.mse(pictures[1], np.zeros((2, 2))) == pytest.approx((0.81 + 0.04) / 4)


def test_the_editors_numbers_follow_the_edit(model, digits):
    images, labels = digits
    means = latent.class_means(images, labels)
    own = latent.encode_digit(model, images[:1])
    unchanged = latent.judge_edit(own, own.code, own.recon, means)
    assert unchanged.cells == 0 and unchanged.mse == unchanged.own_mse == pytest.approx(float(np.mean((own.recon - own.input) ** 2)))
    assert unchanged.looks_like == unchanged.own_looks_like == latent.nearest_class(own.recon[None], means)[0]
    silent = np.zeros_like(own.code)
    blank = latent.decode_codes(model, silent).images[0]
    edit = latent.judge_edit(own, silent, blank, means)
    assert edit.cells == int(own.code.sum()) and edit.mse == pytest.approx(float(np.mean((blank - own.input) ** 2)))
    assert edit.own_mse == unchanged.own_mse and edit.mse > edit.own_mse


def test_class_turns_lists_the_neurons_whose_toggle_changes_the_class_largest_effect_first():
    means = np.stack([np.zeros((2, 2)), np.ones((2, 2))])  # class 0: dark, class 1: bright
    own_recon = np.full((2, 2), 0.2)
    change = np.stack([np.full((2, 2), 0.1), np.full((2, 2), 0.5), np.full((2, 2), 0.7), np.full((2, 2), -0.2)])
    atlas = latent.NeuronAtlas(alone=change, change=change, added=np.zeros(4, bool), effect=(change**2).mean(axis=(1, 2)))
    own_class, turns = latent.class_turns(atlas, own_recon, means)
    assert own_class == 0 and list(turns.items()) == [(2, 1), (1, 1)]  # 0.9 before 0.7; neurons 0 and 3 stay dark


def test_the_blend_switches_at_the_first_stage_nearer_to_b():
    a, b = np.zeros((2, 2)), np.ones((2, 2))
    stages = np.stack([a, a + 0.2, a + 0.4, a + 0.6, b])
    assert latent.switch_stage(stages) == 3
    assert latent.switch_stage(np.stack([a, a, b * 0])) is None  # B looks like A: no stage is nearer to B
