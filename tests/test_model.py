"""The project's model against the tutorial's code as written, and its safety when shared."""

import gc
import threading
import weakref

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from snntorch._neurons.neurons import SpikingNeuron

from benchmarks.tutorial_sae import build_tutorial_sae
from sae.model import LAYER_NAMES, NeuronSettings, SAEConfig, SpikingAutoencoder, layers_that_cannot_fire


def spiking_pair(seed=0, **tutorial_kwargs):
    """A tutorial SAE with weights scaled so every layer fires, and our model with the same weights."""
    torch.manual_seed(seed)
    tutorial = build_tutorial_sae(**tutorial_kwargs)
    with torch.no_grad():
        for p in tutorial.parameters():
            p.mul_(3)
    ours = SpikingAutoencoder(SAEConfig(**{k: v for k, v in tutorial_kwargs.items()}))
    ours.load_state_dict(tutorial.state_dict(), strict=True)
    return tutorial, ours


@pytest.fixture
def images():
    torch.manual_seed(1)
    return torch.rand(16, 1, 32, 32)


def test_every_spiking_layer_fires_in_the_test_weights(images):
    _, ours = spiking_pair()
    _, trace = ours.eval()(images, trace=True)
    rates = trace.spike_rates()
    assert all(0.01 < rates[n] < 0.99 for n in LAYER_NAMES[:-1]), rates


@pytest.mark.parametrize("kwargs", [{}, {"num_steps": 1}, {"num_steps": 7, "thresh": 0.5, "beta": 0.9}])
def test_eval_output_matches_tutorial(images, kwargs):
    tutorial, ours = spiking_pair(**kwargs)
    tutorial.eval(), ours.eval()
    with torch.no_grad():
        assert torch.allclose(ours(images), tutorial(images), atol=1e-6, rtol=0)


def assert_train_step_matches_tutorial(tutorial, ours, images):
    """The foundation's equivalence check, in train mode: outputs to 1e-6, gradients to
    1e-6 of the largest gradient, BatchNorm statistics after the step (test_engine reuses it)."""
    tutorial.train(), ours.train()
    out_t, out_o = tutorial(images), ours(images)
    assert torch.allclose(out_o, out_t, atol=1e-6, rtol=0)
    F.mse_loss(out_t, images).backward()
    F.mse_loss(out_o, images).backward()
    grads_t = dict(tutorial.named_parameters())
    largest = max(p.grad.abs().max() for p in grads_t.values())
    assert largest > 0
    for name, p in ours.named_parameters():
        assert torch.allclose(p.grad, grads_t[name].grad, atol=1e-6 * float(largest), rtol=0), name
    buffers_t = dict(tutorial.named_buffers())
    for name, b in ours.named_buffers():
        if "running" in name or "num_batches" in name:
            assert torch.allclose(b.float(), buffers_t[name].float(), atol=1e-6, rtol=0), name


def test_train_mode_outputs_gradients_and_bn_statistics_match_tutorial(images):
    assert_train_step_matches_tutorial(*spiking_pair(), images)


def test_tutorial_state_dict_loads_strictly_and_round_trips():
    tutorial = build_tutorial_sae()
    ours = SpikingAutoencoder()
    ours.load_state_dict(tutorial.state_dict(), strict=True)  # raises on any missing or unexpected key
    assert list(ours.state_dict()) == list(tutorial.state_dict())
    theirs = tutorial.state_dict()
    assert all(torch.equal(value, theirs[key]) for key, value in ours.state_dict().items())


def test_layers_are_found_by_name_not_by_index():
    model = SpikingAutoencoder(SAEConfig(latent_dim=12))
    assert model.state_key("to_latent", "weight") == "encoder.10.weight"  # the tutorial's key
    assert model.state_dict()[model.state_key("to_latent", "weight")].shape == (12, 2048)
    assert model.state_key("output", "threshold") == "decoder.9.threshold"
    assert [name for name, _ in model.spiking_layers()] == list(LAYER_NAMES)
    assert all(model.layers[name] is layer for name, layer in model.spiking_layers())
    assert "layers" not in dict(model.named_children())  # the by-name dict adds nothing to the state_dict


def test_trace_has_every_layer_and_every_step(images):
    _, ours = spiking_pair()
    recon, trace = ours.eval()(images[:2], trace=True, settings=ours.config.neuron_settings(num_steps=4))
    assert set(trace.spikes) == set(trace.mem) == set(LAYER_NAMES)
    assert trace.spikes["latent"].shape == (4, 2, 32)
    assert trace.mem["enc1"].shape == (4, 2, 32, 16, 16)
    assert torch.equal(trace.outputs[-1], recon)
    assert set(trace.spikes["latent"].unique().tolist()) <= {0.0, 1.0}


def test_other_settings_change_the_result_without_changing_the_model(images):
    _, ours = spiking_pair()
    ours.eval()
    before = {k: v.clone() for k, v in ours.state_dict().items()}
    with torch.no_grad():
        base = ours(images)
        _, high = ours(images, settings=ours.config.neuron_settings(thresh=3.0), trace=True)
        _, low = ours(images, settings=ours.config.neuron_settings(thresh=0.3), trace=True)
        assert ours(images, settings=ours.config.neuron_settings(num_steps=2)).shape == base.shape
        assert not torch.equal(ours(images, settings=ours.config.neuron_settings(beta=0.9)), base)
        assert torch.equal(ours(images), base)
    assert sum(high.spike_rates().values()) < sum(low.spike_rates().values())
    for k, v in ours.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_no_settings_means_the_checkpoints_own(images):
    """``settings=None`` runs the layers' buffers; the config's values as a NeuronSettings give the same
    numbers bit for bit (values chosen not to be exact binary fractions)."""
    _, ours = spiking_pair(thresh=0.7, beta=0.9, num_steps=6)
    ours.eval()
    with torch.no_grad():
        assert torch.equal(ours(images, every_step=True), ours(images, every_step=True, settings=ours.config.neuron_settings()))


@pytest.mark.parametrize(
    "bad, field",
    [({"thresh": 0.0}, "thresh"), ({"thresh": float("nan")}, "thresh"), ({"beta": 1.5}, "beta"), ({"num_steps": 0}, "num_steps"),
     ({"num_steps": 2.5}, "num_steps"), ({"thresh": "1"}, "thresh"), ({"num_steps": True}, "num_steps")],
)  # fmt: skip
def test_out_of_range_settings_are_refused_in_one_line(bad, field):
    with pytest.raises(ValueError) as refused:
        NeuronSettings(**{"thresh": 1.0, "beta": 0.5, "num_steps": 5, **bad})
    message = str(refused.value)
    assert message.startswith(field + " must be") and "\n" not in message
    with pytest.raises(ValueError, match=field):
        SAEConfig(**bad)


def test_neuron_settings_are_one_plain_value():
    settings = NeuronSettings(thresh=1, beta=np.float32(0.5), num_steps=np.int64(5))
    assert (type(settings.thresh), type(settings.beta), type(settings.num_steps)) == (float, float, int)
    assert settings == NeuronSettings(1.0, 0.5, 5) == SAEConfig().neuron_settings()
    assert len({settings, NeuronSettings(1.0, 0.5, 5)}) == 1  # usable as a cache key
    assert settings.label == "thresh 1, steps 5, beta 0.5" and settings.short == "θ1 T5"
    assert NeuronSettings(1.0, 0.5, 3).spike_train_ceiling == pytest.approx(1.75)
    with pytest.raises(AttributeError):
        settings.thresh = 2.0  # frozen: a value passed along cannot change under its holder


def test_eight_threads_on_one_instance_match_serial_calls_bit_for_bit():
    _, ours = spiking_pair()
    ours.eval()
    torch.manual_seed(2)
    inputs = [torch.rand(4, 1, 32, 32) for _ in range(8)]
    settings = [ours.config.neuron_settings(thresh=0.5 + 0.25 * i, num_steps=1 + i % 5) for i in range(8)]
    with torch.no_grad():
        serial = [ours(x, settings=s) for x, s in zip(inputs, settings)]
    results = [None] * 8
    start = threading.Barrier(8)

    def work(i):
        start.wait()
        with torch.no_grad():
            for _ in range(5):
                results[i] = ours(inputs[i], settings=settings[i])
                assert torch.equal(results[i], serial[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, serial):
        assert torch.equal(got, want)


@pytest.mark.slow  # 200 models
def test_building_and_dropping_models_leaves_nothing_behind():
    neurons_before = len(SpikingNeuron.instances)
    refs = []
    x = torch.rand(2, 1, 32, 32)
    for _ in range(200):
        model = SpikingAutoencoder()
        with torch.no_grad():
            model(x)
        refs.append(weakref.ref(model))
        del model
    gc.collect()
    assert sum(r() is not None for r in refs) == 0
    assert len(SpikingNeuron.instances) == neurons_before


def test_config_validation_messages():
    with pytest.raises(ValueError, match="latent_dim"):
        SAEConfig(latent_dim=0)
    with pytest.raises(ValueError, match="surrogate"):
        SAEConfig(surrogate="relu")
    with pytest.raises(ValueError, match="unknown config keys"):
        SAEConfig.from_dict({"latent": 3})
    assert SAEConfig.from_dict(SAEConfig().to_dict()) == SAEConfig()


def test_fast_sigmoid_surrogate_matches_tutorial(images):
    from snntorch import surrogate

    from benchmarks.tutorial_sae import TutorialSAE

    torch.manual_seed(0)
    tutorial = TutorialSAE(spike_grad=surrogate.fast_sigmoid(slope=25))
    with torch.no_grad():
        for p in tutorial.parameters():
            p.mul_(3)
    ours = SpikingAutoencoder(SAEConfig(surrogate="fast_sigmoid"))
    ours.load_state_dict(tutorial.state_dict())
    F.mse_loss(tutorial(images), images).backward()
    F.mse_loss(ours(images), images).backward()
    g_t = dict(tutorial.named_parameters())
    largest = max(p.grad.abs().max() for p in g_t.values())
    for name, p in ours.named_parameters():
        assert torch.allclose(p.grad, g_t[name].grad, atol=1e-6 * float(largest), rtol=0), name


@pytest.mark.parametrize(
    "thresh, beta, num_steps, silent",
    [
        (2.0, 0.5, 5, True),
        (2.0, 0.5, 50, True),
        (1.0, 0.5, 1, True),
        (1.0, 0.5, 2, False),
        (1.9, 0.5, 5, False),
        (2.0, 0.9, 5, False),
        (0.5, 0.5, 1, False),
    ],
)
def test_dec0_cannot_fire_when_a_spike_every_step_stays_at_or_below_threshold(thresh, beta, num_steps, silent):
    assert layers_that_cannot_fire(NeuronSettings(thresh, beta, num_steps)) == (("dec0",) if silent else ())
    # Hold the rule against the network itself: make the linear layer fire at every step, whatever the input.
    model = SpikingAutoencoder(SAEConfig(thresh=thresh, beta=beta, num_steps=num_steps)).eval()
    with torch.no_grad():
        model.layers["from_latent"].weight.zero_()
        model.layers["from_latent"].bias.fill_(100.0)
        _, trace = model(torch.rand(2, 1, 32, 32), trace=True)
    assert bool(trace.spikes["linear"].all())
    assert bool(trace.spikes["dec0"].any()) == (not silent)
