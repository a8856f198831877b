"""``python -m benchmarks.browser_equivalence``: how far fp32 rounding alone moves the network,
and where the exported step graphs (``sae.io.browser_model``) land against it.

Bit equality between two fp32 engines is not possible: another convolution kernel sums in
another order, and a spike that flips near the threshold cascades through later layers
and steps.  So the truth is torch in float64, and each fp32 engine is measured against it
on real MNIST test digits:

- ``flipped``: fraction of neuron-steps (every spiking layer, every step) whose spike differs;
- ``latent``: fraction of latent cells (neuron x step) that differ: the code the decoder sees;
- ``mse``: the largest relative difference of one image's reconstruction MSE.

Torch's own rounding spread is the worst of torch fp32 as it runs (NCHW), in channels-last
memory format (other kernels), and with its weights nudged by one fp32 ulp (three seeds):
three ways the same fp32 arithmetic can round differently.  The rule (:func:`within_rule`) holds
another engine to a small multiple of that spread, with a floor of one flipped spike per
image so that a spread of exactly zero does not demand bit equality.  Planted mistakes (a
wrong beta, no reset, BatchNorm in training mode, a transposed weight) must land far outside.
Prints one table; the figures go to docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sae.data.mnist import mnist_tensors
from sae.io.browser_model import DECODER_LAYERS, ENCODER_LAYERS, export_onnx, layer_shapes
from sae.io.checkpoints import SHIPPED_DIR, load_checkpoint
from sae.model import LIF, SPIKING_LAYERS, NeuronSettings, SpikingAutoencoder

# (thresh, beta, num_steps): the trained settings, a leaky-free long run, a high threshold,
# and a busy network where near-threshold cascades are most likely.
SETTINGS = ((1.0, 0.5, 5), (0.5, 0.9, 10), (1.5, 0.7, 5), (0.25, 0.95, 20))
RULE_FACTOR = 4.0  # another engine may move the network this many times torch's own spread
NUDGE_SEEDS = (0, 1, 2)
METRICS = ("flipped", "latent", "mse")


@dataclass(frozen=True)
class Run:
    """What one engine computed: spikes per spiking layer [T, B, ...] and the output membrane [T, B, H, W]."""

    spikes: dict[str, np.ndarray]
    outputs: np.ndarray


@dataclass(frozen=True)
class Differences:
    flipped: float
    latent: float
    mse: float

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in METRICS}


def torch_run(model: SpikingAutoencoder, images: torch.Tensor, setting, dtype=torch.float32, channels_last=False) -> Run:
    thresh, beta, steps = setting
    model = copy.deepcopy(model).to(dtype).eval()
    x = images.to(dtype)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        outputs, trace = model(x, settings=NeuronSettings(thresh=thresh, beta=beta, num_steps=steps), trace=True, every_step=True)
    return Run({n: trace.spikes[n].numpy().astype(np.uint8) for n in SPIKING_LAYERS}, outputs[:, :, 0].double().numpy())


def nudged(model: SpikingAutoencoder, seed: int) -> SpikingAutoencoder:
    """A copy whose fp32 weights moved by at most one ulp each, at random: a model of 'another
    kernel rounded the products differently'."""
    model = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            direction = torch.randint(-1, 2, p.shape, generator=generator).float()
            toward = torch.where(direction > 0, torch.full_like(p, float("inf")), torch.full_like(p, -float("inf")))
            p.copy_(torch.where(direction == 0, p, torch.nextafter(p, toward)))
    return model


def onnx_sessions(model: SpikingAutoencoder, export=export_onnx):
    """onnxruntime sessions of the two exported step graphs (CPU, one thread: like the page)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    encoder, decoder = export(model)
    return tuple(onnxruntime.InferenceSession(g, options, providers=["CPUExecutionProvider"]) for g in (encoder, decoder))


def onnx_run(sessions, model: SpikingAutoencoder, images: torch.Tensor, setting) -> Run:
    """The page's loop, in Python: for each step, one encoder step then one decoder step."""
    thresh, beta, steps = setting
    encoder, decoder = sessions
    shapes, batch = layer_shapes(model), len(images)
    mem = {n: np.zeros((batch, *shapes[n]), np.float32) for n in ENCODER_LAYERS + DECODER_LAYERS}
    settings = {"thresh": np.array(thresh, np.float32), "beta": np.array(beta, np.float32)}
    spikes = {n: [] for n in SPIKING_LAYERS}
    outputs = []
    for _ in range(steps):
        latent = _step(encoder, {"image": images.numpy()}, ENCODER_LAYERS, mem, settings, spikes)
        _step(decoder, {"latent_spikes": latent}, DECODER_LAYERS, mem, settings, spikes)
        outputs.append(mem["output"][:, 0].astype(np.float64))
    return Run({n: np.stack(s).astype(np.uint8) for n, s in spikes.items()}, np.stack(outputs))


def _step(session, first: dict, layers, mem: dict, settings: dict, spikes: dict) -> np.ndarray:
    feeds = {**first, **{f"mem_{n}": mem[n] for n in layers}, **settings}
    out = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
    for name in layers:
        mem[name] = out[f"new_mem_{name}"]
        if name in spikes:
            spikes[name].append(out[f"spikes_{name}"])
    return out[f"spikes_{layers[-1]}"]


def differences(run: Run, truth: Run, images: torch.Tensor) -> Differences:
    flips = sum(int((run.spikes[n] != truth.spikes[n]).sum()) for n in SPIKING_LAYERS)
    cells = sum(truth.spikes[n].size for n in SPIKING_LAYERS)
    target = images[:, 0].double().numpy()
    mse, mse_truth = (((r.outputs[-1] - target) ** 2).mean(axis=(1, 2)) for r in (run, truth))
    return Differences(
        flipped=flips / cells,
        latent=float((run.spikes["latent"] != truth.spikes["latent"]).mean()),
        mse=float((np.abs(mse - mse_truth) / np.maximum(mse_truth, 1e-12)).max()),
    )


def torch_spread(model: SpikingAutoencoder, images: torch.Tensor, setting, truth: Run) -> Differences:
    """The worst of torch fp32's own ways to round, against the float64 truth."""
    runs = [torch_run(model, images, setting), torch_run(model, images, setting, channels_last=True)]
    runs += [torch_run(nudged(model, seed), images, setting) for seed in NUDGE_SEEDS]
    found = [differences(r, truth, images) for r in runs]
    return Differences(*(max(getattr(d, m) for d in found) for m in METRICS))


def allowed(spread: Differences, truth: Run, images: torch.Tensor) -> Differences:
    """The rule's limits: ``RULE_FACTOR`` times torch's spread, at least one flipped spike per image
    (and what one latent flip does to the MSE, judged by the spread: no floor there)."""
    cells = sum(truth.spikes[n].size for n in SPIKING_LAYERS)
    latent_cells = truth.spikes["latent"].size
    one_per_image = len(images)
    return Differences(
        flipped=max(RULE_FACTOR * spread.flipped, one_per_image / cells),
        latent=max(RULE_FACTOR * spread.latent, one_per_image / latent_cells),
        mse=max(RULE_FACTOR * spread.mse, 1e-4),
    )


def within_rule(found: Differences, limit: Differences) -> list[str]:
    """The metrics on which ``found`` exceeds ``limit`` (empty: it passes)."""
    return [m for m in METRICS if getattr(found, m) > getattr(limit, m)]


# --- planted mistakes: each is a plausible slip in an exporter, made while exporting ----------


def _step_without_reset(input_, mem, beta, thr, spike_fn, scale):
    beta = beta.clamp(0, 1) if torch.is_tensor(beta) else min(max(beta, 0.0), 1.0)  # a tensor when exporting
    mem = beta * mem + input_
    return spike_fn.apply(mem - thr, scale), mem


def _step_with_wrong_beta(input_, mem, beta, thr, spike_fn, scale):
    return ORIGINAL_STEP(input_, mem, beta + 0.05, thr, spike_fn, scale)


ORIGINAL_STEP = LIF.step


@contextlib.contextmanager
def _lif_step(step):
    LIF.step = staticmethod(step)
    try:
        yield
    finally:
        LIF.step = staticmethod(ORIGINAL_STEP)


def _export_in_training_mode(model):
    """The export's ``eval()`` does not reach BatchNorm: it normalises by each batch's own statistics."""
    original = nn.BatchNorm2d.train
    nn.BatchNorm2d.train = lambda self, mode=True: original(self, True)
    try:
        return export_onnx(model)
    finally:
        nn.BatchNorm2d.train = original


def _export_transposed(model):
    wrong = copy.deepcopy(model)
    with torch.no_grad():
        conv = wrong.layers["conv2"]
        conv.weight.copy_(conv.weight.transpose(2, 3).clone())
    return export_onnx(wrong)


def _export_with(step):
    def export(model):
        with _lif_step(step):
            return export_onnx(model)

    return export


PLANTED = {
    "beta off by 0.05": _export_with(_step_with_wrong_beta),
    "no reset": _export_with(_step_without_reset),
    "BatchNorm in training mode": _export_in_training_mode,
    "conv2 weight transposed": _export_transposed,
}


# --- the table -------------------------------------------------------------------------------


def measure(model, images, settings=SETTINGS, planted=()):
    """Rows of (setting, engine, Differences, Differences limit) for one model."""
    sessions = onnx_sessions(model)
    wrong = {name: onnx_sessions(model, PLANTED[name]) for name in planted}
    rows = []
    for setting in settings:
        truth = torch_run(model, images, setting, dtype=torch.float64)
        spread = torch_spread(model, images, setting, truth)
        limit = allowed(spread, truth, images)
        rows.append((setting, "torch fp32 (spread)", spread, limit))
        rows.append((setting, "onnxruntime fp32", differences(onnx_run(sessions, model, images, setting), truth, images), limit))
        for name, s in wrong.items():
            rows.append((setting, f"planted: {name}", differences(onnx_run(s, model, images, setting), truth, images), limit))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.browser_equivalence", description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="MNIST test digits (the first N)")
    parser.add_argument("--checkpoints", nargs="*", type=Path, default=sorted(SHIPPED_DIR.glob("*.pt")))
    parser.add_argument("--planted", action="store_true", help="also the planted mistakes (on the first checkpoint)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    images = mnist_tensors(train=False)[0][: args.images]
    print(f"{args.images} MNIST test digits; truth: torch float64; rule: {RULE_FACTOR:g} x torch's own spread, at least one flip per image")
    print(f"{'checkpoint':<22} {'thresh/beta/T':<14} {'engine':<36} {'flipped':>9} {'latent':>9} {'mse rel':>9}  verdict")
    for i, path in enumerate(args.checkpoints):
        model = load_checkpoint(path).model.eval()
        for setting, engine, found, limit in measure(model, images, planted=PLANTED if args.planted and i == 0 else ()):
            over = within_rule(found, limit)
            verdict = "" if engine.startswith("torch") else ("outside: " + ", ".join(over) if over else "within")
            label = "/".join(f"{v:g}" for v in setting)
            print(f"{path.stem:<22} {label:<14} {engine:<36} {found.flipped:>9.2e} {found.latent:>9.2e} {found.mse:>9.2e}  {verdict}")
            if engine.startswith("torch"):
                print(f"{'':<22} {'':<14} {'  limit':<36} {limit.flipped:>9.2e} {limit.latent:>9.2e} {limit.mse:>9.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
