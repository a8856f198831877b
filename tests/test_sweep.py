"""sae.analysis.sweep: the sweep's numbers against separate forwards, its speed-ups kept honest, caching, trained models."""

import pickle
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sae.analysis import sweep, trained_for_setting
from sae.analysis.two_settings import ab_compare
from sae.data.mnist import pick_digits
from sae.io.fingerprints import model_fingerprint
from sae.model import LAYER_NAMES, SPIKING_LAYERS, NeuronSettings, SAEConfig, SpikingAutoencoder
from sae.plots import compare as plots
from sae.runs.shared_results import ResultCache
from sae.training.loop import evaluate


def firing_model(seed=0, **config):
    """A small model whose weights are scaled so that every layer fires (untrained ones barely do)."""
    torch.manual_seed(seed)
    model = SpikingAutoencoder(SAEConfig(latent_dim=16, **config))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3)
    return model.eval()


def at(thresh, num_steps, beta=0.5) -> NeuronSettings:
    """A sweep cell's settings (the test models' beta is 0.5 unless given)."""
    return NeuronSettings(thresh, beta, num_steps)


@pytest.fixture(scope="module")
def model():
    return firing_model()


@pytest.fixture(scope="module")
def images():
    torch.manual_seed(1)
    return torch.rand(20, 1, 32, 32)


def test_every_setting_matches_a_separate_forward(model, images):
    """The causal-prefix shortcut and the spike-counting hooks give the traced forward's numbers."""
    result = sweep.run_sweep(model, images, [0.5, 1.0, 2.0], [1, 3, 5], show=4, raster_index=2, batch_size=8)
    assert result.digit_count == 20 and len(result.results) == 9
    with torch.no_grad():
        for r in result.results:
            recon, trace = model(images, trace=True, settings=r.setting)
            assert r.mse == pytest.approx(F.mse_loss(recon, images).item(), rel=1e-5)
            expected_rates = trace.spike_rates()
            for layer in SPIKING_LAYERS:
                assert r.spike_rates[layer] == pytest.approx(expected_rates[layer], abs=1e-7), (r.setting, layer)
            np.testing.assert_allclose(r.reconstructions, recon[:4, 0].numpy(), atol=1e-6)
            np.testing.assert_array_equal(r.latent_raster, trace.spikes["latent"][:, 2].numpy())
    assert result.results[0].latent_raster.shape == (1, 16)


def test_parallel_workers_give_bit_identical_numbers(model, images):
    """Pieces are summed in a fixed order: the result cannot depend on which worker finished first."""
    serial = sweep.run_sweep(model, images, [0.5, 1.0, 2.0], [2, 4], batch_size=6, workers=1)
    for _ in range(2):
        parallel = sweep.run_sweep(model, images, [0.5, 1.0, 2.0], [2, 4], batch_size=6, workers=3)
        for a, b in zip(serial.results, parallel.results):
            assert a.setting == b.setting and a.mse == b.mse and a.spike_rates == b.spike_rates
            np.testing.assert_array_equal(a.reconstructions, b.reconstructions)
            np.testing.assert_array_equal(a.latent_raster, b.latent_raster)


def test_the_test_weights_fire_and_settings_matter(model, images):
    result = sweep.run_sweep(model, images, [0.5, 2.0], [1, 5])
    assert all(0.01 < result.at(at(0.5, 5)).spike_rates[n] for n in SPIKING_LAYERS), result.at(at(0.5, 5)).spike_rates
    assert len({round(r.mse, 6) for r in result.results}) == 4, "every setting should reconstruct differently"


def test_matches_train_evaluate(model, images):
    result = sweep.run_sweep(model, images, [0.75], [4], betas=[0.9])
    mse, rates = evaluate(model, images, settings=at(0.75, 4, 0.9))
    r = result.at(at(0.75, 4, 0.9))
    assert r.mse == pytest.approx(mse, rel=1e-5)
    assert r.spike_rates == pytest.approx(rates, abs=1e-7)


def test_higher_threshold_means_fewer_spikes_in_the_first_layer(model, images):
    """The page's lesson, on a model that fires: the first layer sees the same input at every threshold."""
    result = sweep.run_sweep(model, images, [0.25, 0.5, 1.0, 2.0, 4.0], [5])
    rates = [r.spike_rates["enc1"] for r in result.series("thresh", 5)]
    assert rates == sorted(rates, reverse=True) and rates[0] > rates[-1]


def test_grid_order_and_accessors(model, images):
    result = sweep.run_sweep(model, images[:6], [2.0, 0.5, 1.0, 0.5], [5, 1], betas=[0.5, 0.25])
    assert result.thresholds == (0.5, 1.0, 2.0) and result.num_steps == (1, 5) and result.betas == (0.25, 0.5)
    grid = result.mse_grid(0.5)
    assert grid.shape == (3, 2)
    assert grid[2, 0] == result.at(at(2.0, 1, 0.5)).mse
    assert [[r.setting for r in row] for row in result.table()] == [[at(t, s, 0.25) for s in (1, 5)] for t in (0.5, 1.0, 2.0)]
    assert [r.setting for r in result.series("num_steps", 1.0, 0.5)] == [at(1.0, 1), at(1.0, 5)]
    assert [r.setting for r in result.results] == sweep.grid([2.0, 0.5, 1.0], [5, 1], [0.5, 0.25])
    order = [(s.thresh, s.num_steps, s.beta) for s in sweep.grid([2.0, 0.5], [5, 1], [0.5, 0.25])]
    assert order[:3] == [(0.5, 1, 0.25), (0.5, 1, 0.5), (0.5, 5, 0.25)]  # thresh, then num_steps, then beta
    rows = result.rows()
    assert len(rows) == 12 and {"thresh", "num_steps", "beta", "mse", "rate_latent"} <= set(rows[0])
    with pytest.raises(KeyError, match="thresh 3, steps 1"):
        result.at(at(3.0, 1))


def test_default_beta_is_the_models_own(images):
    model = firing_model(beta=0.8)
    result = sweep.run_sweep(model, images[:4], [1.0], [2])
    assert result.betas == (0.8,)


def test_model_is_left_untouched(model, images):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    sweep.run_sweep(model, images[:4], [0.5], [2])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(m._forward_hooks for m in model.modules()), "hooks must go on a private copy"
    assert not model.training
    trainee = firing_model().train()
    sweep.run_sweep(trainee, images[:4], [0.5], [2])
    assert trainee.training


def test_other_threads_using_the_model_are_not_disturbed(model, images):
    x = images[:3]
    with torch.no_grad():
        expected = model(x, settings=at(1.0, 4), trace=True)[1].spike_rates()
    seen, stop = [], threading.Event()

    def forward_loop():
        with torch.no_grad():
            while not stop.is_set():
                seen.append(model(x, settings=at(1.0, 4), trace=True)[1].spike_rates())

    worker = threading.Thread(target=forward_loop)
    worker.start()
    try:
        sweep.run_sweep(model, images, [0.5, 1.0], [1, 6], batch_size=4)
    finally:
        stop.set()
        worker.join()
    assert seen and all(s == expected for s in seen)


def test_progress_rises_to_one(model, images):
    calls = []
    sweep.run_sweep(model, images, [0.5, 1.0], [2, 4], batch_size=8, progress=lambda f, m: calls.append((f, m)))
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0) and len(calls) == 6
    assert "thresh" in calls[0][1]


def test_bad_requests_fail_clearly(model, images):
    with pytest.raises(ValueError, match="no digits"):
        sweep.run_sweep(model, images[:0], [1.0], [1])
    with pytest.raises(ValueError, match="at least one"):
        sweep.run_sweep(model, images, [], [1])
    with pytest.raises(ValueError, match="raster_index"):
        sweep.run_sweep(model, images[:2], [1.0], [1], raster_index=2)
    with pytest.raises(ValueError, match="num_steps"):
        sweep.run_sweep(model, images[:2], [1.0], [0])


def test_result_survives_pickling_unchanged(model, images):
    """st.cache_data and friends pickle results: nothing may be lost on the way."""
    result = sweep.run_sweep(model, images[:5], [0.5, 1.0], [1, 3])
    copy = pickle.loads(pickle.dumps(result))
    assert len(copy.results) == len(result.results)
    for a, b in zip(copy.results, result.results):
        assert a.setting == b.setting and a.mse == b.mse and a.spike_rates == b.spike_rates
        np.testing.assert_array_equal(a.reconstructions, b.reconstructions)
        np.testing.assert_array_equal(a.latent_raster, b.latent_raster)
    assert not result.results[0].reconstructions.flags.writeable


# --------------------------------------------------------------------------- A/B


def test_ab_same_setting_has_no_differences(model, images):
    ab = ab_compare(model, images[:1], at(1.0, 4), at(1.0, 4))
    assert ab.latent_flips() == 0 and ab.mse_change == 0
    assert not np.any(ab.reconstruction_change())


def test_ab_different_thresholds_differ_where_the_trace_says(model, images):
    a, b = at(0.5, 3), at(2.0, 5)
    ab = ab_compare(model, images[:1], a, b)
    with torch.no_grad():
        _, ta = model(images[:1], trace=True, settings=a)
        _, tb = model(images[:1], trace=True, settings=b)
    flips = int((ta.spikes["latent"][:3, 0] != tb.spikes["latent"][:3, 0]).sum())
    assert ab.latent_flips() == flips > 0
    assert ab.rate_changes()["enc1"] == pytest.approx(tb.spike_rates()["enc1"] - ta.spike_rates()["enc1"], abs=1e-6)
    assert (ab.a.settings, ab.a.num_steps, ab.b.settings, ab.b.num_steps) == (a, 3, b, 5)


# --------------------------------------------------------------------------- trained for the setting


def test_registry_covers_both_series():
    assert [e.num_steps for e in trained_for_setting.trained_series("num_steps")] == [1, 3, 5, 10]
    assert [e.thresh for e in trained_for_setting.trained_series("thresh")] == [0.5, 1.0, 2.0]
    assert all(e.thresh == 1.0 for e in trained_for_setting.trained_series("num_steps"))
    assert all(e.num_steps == 5 for e in trained_for_setting.trained_series("thresh"))
    assert trained_for_setting.REFERENCE_FILENAME in {e.filename for e in trained_for_setting.TRAINED_FOR_SETTING}
    with pytest.raises(ValueError):
        trained_for_setting.trained_series("beta")
    t10 = trained_for_setting.trained_series("num_steps")[-1]
    assert t10.matches(SAEConfig(num_steps=10)) and not t10.matches(SAEConfig(num_steps=5))
    assert not t10.matches(SAEConfig(num_steps=10, thresh=2.0))


def test_locate_trained_reports_missing_files(tmp_path, monkeypatch):
    (tmp_path / "compare_T3_thr1.pt").write_bytes(b"x")
    monkeypatch.setattr(trained_for_setting, "TRAINED_DIR", tmp_path)
    found = dict((e.filename, p) for e, p in trained_for_setting.locate_trained())
    assert found["compare_T3_thr1.pt"] == tmp_path / "compare_T3_thr1.pt"
    assert found["compare_T1_thr1.pt"] is None and len(found) == 6


def test_compare_trained_measures_each_model_at_its_own_setting(images):
    reference = firing_model(seed=0)
    trained_t1 = firing_model(seed=1, num_steps=1)
    entries = trained_for_setting.trained_series("num_steps")[:2]  # T1 (present) and T3 (missing)
    calls = []
    rows = trained_for_setting.compare_trained(
        entries, {"compare_T1_thr1.pt": trained_t1}, reference, images, show=3, progress=lambda f, m: calls.append(f)
    )
    t1, t3 = rows
    assert t1.trained.setting == at(1.0, 1) and t3.trained is None
    with torch.no_grad():
        assert t1.trained.mse == pytest.approx(F.mse_loss(trained_t1(images), images).item(), rel=1e-5)
        assert t3.after_training.mse == pytest.approx(F.mse_loss(reference(images, settings=at(1.0, 3)), images).item(), rel=1e-5)
    assert t1.after_training.setting == at(1.0, 1)
    assert calls[-1] == pytest.approx(1.0)
    no_reference = trained_for_setting.compare_trained(entries, {"compare_T1_thr1.pt": trained_t1}, None, images)
    assert no_reference[0].after_training is None


# --------------------------------------------------------------------------- digits and caching


def test_pick_digits_is_seeded_and_filters_by_class():
    labels = torch.arange(100) % 10
    first = pick_digits(labels, "random", 12, seed=3)
    assert first == pick_digits(labels, "random", 12, seed=3) != pick_digits(labels, "random", 12, seed=4)
    assert len(set(first)) == 12
    sevens = pick_digits(labels, "class", 5, seed=0, digit_class=7)
    assert len(sevens) == 5 and all(labels[i] == 7 for i in sevens)
    assert len(pick_digits(labels, "class", 50, digit_class=7)) == 10  # only 10 sevens exist
    with pytest.raises(ValueError):
        pick_digits(labels, "class", 5, digit_class=None)


def test_fingerprint_follows_the_weights():
    a, b = firing_model(seed=0), firing_model(seed=0)
    assert model_fingerprint(a) == model_fingerprint(b)
    with torch.no_grad():
        b.linearNet[0].bias[0] += 1e-3
    assert model_fingerprint(a) != model_fingerprint(b)


def test_result_cache_is_bounded_and_computes_once():
    cache = ResultCache(max_entries=2)
    assert cache.get_or_compute("a", lambda: 1) == 1
    assert cache.get_or_compute("a", lambda: 2) == 1
    cache.put("b", 2)
    cache.get("a")  # a is now the most recent
    cache.put("c", 3)
    assert cache.get("a") == 1 and cache.get("b") is None and cache.get("c") == 3
    assert cache.computed == 1


def test_result_cache_runs_one_computation_for_concurrent_requests():
    cache, started, release = ResultCache(), threading.Event(), threading.Event()
    runs = []

    def slow():
        runs.append(1)
        started.set()
        assert release.wait(60)  # events, not sleeps: the bound only turns a hang into a failure
        return "done"

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_compute("k", slow))) for _ in range(3)]
    for t in threads:
        t.start()
    assert started.wait(60)
    release.set()
    for t in threads:
        t.join(60)
    assert results == ["done"] * 3 and len(runs) == 1


# --------------------------------------------------------------------------- figures


def test_figures_hold_the_sweeps_numbers(model, images):
    result = sweep.run_sweep(model, images[:6], [0.5, 1.0, 2.0], [1, 2, 4], show=3)
    heat = plots.mse_heatmap(result)
    np.testing.assert_allclose(np.array(heat.data[0].z), result.mse_grid())
    grid = plots.series_grid(result, "thresh", digits=3)
    z = np.array(grid.data[0].z, dtype=float)
    assert z.shape == (3 * 32 + 2 * plots.GAP, 4 * 32 + 3 * plots.GAP)  # 3 digits x (input + 3 thresholds)
    np.testing.assert_allclose(z[:32, 34:66], result.at(at(0.5, 1)).reconstructions[0])
    assert list(grid.layout.xaxis.ticktext) == ["input", "thresh 0.5", "thresh 1", "thresh 2"]
    rasters = plots.sweep_rasters(result)
    assert np.array(rasters.data[0].z, dtype=float).shape == (3 * 16 + 4, 1 + 2 + 4 + 4)
    rates = plots.sweep_rate_heatmap(result)
    assert list(rates.data[0].y) == list(SPIKING_LAYERS) and len(rates.data[0].x) == 9
    lines = plots.mse_vs(result, "num_steps")
    assert len(lines.data) == 3 and list(lines.data[0].y) == [result.at(at(0.5, s)).mse for s in (1, 2, 4)]
    assert len(plots.rates_vs(result, "thresh").data) == len(LAYER_NAMES) - 1
    mean_rates = plots.mean_rate_vs(result, "thresh")
    assert list(mean_rates.data[1].y) == [result.at(at(t, 2)).mean_rate for t in (0.5, 1.0, 2.0)]


def test_ab_figures_highlight_the_difference(model, images):
    ab = ab_compare(model, images[:1], at(0.5, 3), at(2.0, 5))
    fig = plots.ab_images(ab)
    np.testing.assert_allclose(np.array(fig.data[3].z), ab.b.recon - ab.a.recon)
    raster = plots.ab_raster(ab)
    diff = np.array(raster.data[2].z)
    assert diff.shape == (16, 5)
    assert int(((diff == 1) | (diff == 2))[:, :3].sum()) == ab.latent_flips()
    assert np.all(diff[:, 3:] != 1), "steps 4-5 exist only in B: nothing there can be 'only A'"
    for layer in ("enc1", "latent"):
        assert len(plots.ab_layer_counts(ab, layer).data) == 3
    assert len(plots.ab_steps(ab).data) == 1 and len(plots.ab_rates(ab).data) == 2


def test_trained_figures_leave_gaps_for_missing_models(images):
    reference, t1 = firing_model(seed=0), firing_model(seed=1, num_steps=1)
    rows = trained_for_setting.compare_trained(trained_for_setting.trained_series("num_steps"), {"compare_T1_thr1.pt": t1}, reference, images[:4])
    fig = plots.trained_vs_after(rows, "num_steps")
    trained_mse = list(fig.data[0].y)
    assert trained_mse[0] == pytest.approx(rows[0].trained.mse) and trained_mse[1:] == [None, None, None]
    assert all(v is not None for v in fig.data[2].y)
    recon = plots.trained_reconstructions(rows, np.zeros((4, 32, 32)), "num_steps", count=2)
    assert len(recon.layout.yaxis.ticktext) == 1 + 2 * 4
    z = np.array(recon.data[0].z, dtype=float)
    assert z.shape == (9 * 32 + 8 * plots.GAP, 2 * 32 + plots.GAP), "rows of missing models keep their height"
    assert np.isnan(z[3 * (32 + plots.GAP) : 3 * (32 + plots.GAP) + 32]).all()  # row 3, T3 trained: not shipped
    assert not np.isnan(z[2 * (32 + plots.GAP) : 2 * (32 + plots.GAP) + 32, :32]).any()  # T1 set after: there
