"""The spiking autoencoder of the snnTorch SAE tutorial, written out plainly.

Every spiking layer is a leaky integrate-and-fire (LIF) neuron, updated once per
time step exactly as snnTorch's ``Leaky`` (reset by subtraction, one-step reset
delay)::

    reset_t = H(mem_{t-1} - thresh)                      # no gradient
    mem_t   = clamp(beta, 0, 1) * mem_{t-1} + input_t - reset_t * thresh
    spk_t   = H(mem_t - thresh)                          # surrogate gradient

Unlike ``snn.Leaky(init_hidden=True)`` the membrane is *not* kept on the module:
it lives in local variables of one forward call.  So a model owns no run-time
state, one instance can serve many threads at once, the neuron settings
(:class:`NeuronSettings`: ``thresh``, ``beta``, ``num_steps``) can be chosen per
call, and nothing is registered in snnTorch's global ``SpikingNeuron.instances``
list (which never shrinks).

Module names and buffers match the tutorial's ``SAE`` class, so a ``state_dict``
saved from the tutorial's code loads here with ``strict=True``.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from sae.limits import LIMITS

SURROGATES = ("atan", "fast_sigmoid")
DEFAULT_SURROGATE_SCALE = {"atan": 2.0, "fast_sigmoid": 25.0}

# Names of the spiking layers, in the order the signal meets them.
LAYER_NAMES = ("enc1", "enc2", "enc3", "latent", "linear", "dec0", "dec1", "dec2", "output")
# The ones that spike: the output layer never fires, its membrane is the image.
SPIKING_LAYERS = LAYER_NAMES[:-1]


@dataclass(frozen=True)
class NeuronSettings:
    """How the spiking layers run: firing threshold, membrane decay, and how many time steps
    the image is shown.

    The one value that travels from the sidebar (or a sweep, the A/B view, the lab) to the
    model: ``model(x, settings=...)``; ``None`` there means the checkpoint's own
    (``model.config.neuron_settings()``).  Built valid or not at all: the ranges are
    sae.limits', and a value out of range raises a one-line ValueError.
    """

    thresh: float
    beta: float
    num_steps: int

    def __post_init__(self):
        for name, kind in (("thresh", float), ("beta", float), ("num_steps", int)):
            value = _number(getattr(self, name), kind)
            if problem := LIMITS[name].problem(value):
                raise ValueError(problem)
            object.__setattr__(self, name, value)  # plain float / int: equal settings hash and compare equal

    @property
    def label(self) -> str:
        return f"thresh {self.thresh:g}, steps {self.num_steps}, beta {self.beta:g}"

    @property
    def short(self) -> str:
        return f"θ{self.thresh:g} T{self.num_steps}"

    @property
    def spike_train_ceiling(self) -> float:
        """The highest membrane a LIF reaches from a spike (1) at every step: ``1 + beta + ... + beta**(T-1)``."""
        return sum(self.beta**k for k in range(self.num_steps))


def _number(value, kind):
    """A number as a plain Python float or int (numpy scalars included, so settings read from
    arrays hash like typed-in ones); anything else is left as it is for the range check to refuse."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return value
    if kind is int:
        return int(value) if isinstance(value, numbers.Integral) else value
    return float(value)


@dataclass(frozen=True)
class SAEConfig:
    """Architecture and the neuron settings it was trained with (the tutorial's defaults)."""

    latent_dim: int = 32
    beta: float = 0.5
    thresh: float = 1.0
    num_steps: int = 5
    surrogate: str = "atan"  # "atan" (alpha) or "fast_sigmoid" (slope)
    surrogate_scale: float | None = None  # None: alpha 2 for atan, slope 25 for fast_sigmoid
    input_size: int = 32
    output_thresh: float = 20000.0  # the last layer never fires: its membrane is the image

    def __post_init__(self):
        self.neuron_settings()  # raises for a value out of range
        if not 1 <= int(self.latent_dim) <= 4096:
            raise ValueError(f"latent_dim must be between 1 and 4096, got {self.latent_dim}")
        if self.surrogate not in SURROGATES:
            raise ValueError(f"surrogate must be one of {SURROGATES}, got {self.surrogate!r}")
        if self.input_size % 8 or not 8 <= self.input_size <= 256:
            raise ValueError(f"input_size must be a multiple of 8 in [8, 256], got {self.input_size}")
        if self.surrogate_scale is not None and not self.surrogate_scale > 0:
            raise ValueError(f"surrogate_scale must be positive, got {self.surrogate_scale}")

    def neuron_settings(self, **changes) -> NeuronSettings:
        """The thresh, beta and num_steps the model was trained with (what it runs at unless told
        otherwise), with ``changes``: ``config.neuron_settings(thresh=2.0)``."""
        return NeuronSettings(**{"thresh": self.thresh, "beta": self.beta, "num_steps": self.num_steps, **changes})

    @property
    def scale(self) -> float:
        return self.surrogate_scale or DEFAULT_SURROGATE_SCALE[self.surrogate]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> SAEConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        return cls(**values)


def layers_that_cannot_fire(settings: NeuronSettings) -> tuple[str, ...]:
    """Spiking layers that no weights can make fire at these settings.

    ``dec0`` is the one LIF with no weights before it: its input is the ``linear``
    layer's spikes, 0 or 1, only unflattened.  With a spike at every step its
    membrane reaches at most ``1 + beta + ... + beta**(T-1)`` (reset only lowers
    it), and it fires only strictly above ``thresh``.  So with beta 0.5 it can
    never fire at thresh 2 (the sum stays below 2), nor at num_steps 1 with
    thresh 1 (one spike charges it to exactly 1).  Then nothing reaches the rest
    of the decoder, and the output is the same image whatever the input.
    """
    return ("dec0",) if settings.spike_train_ceiling <= settings.thresh else ()


class _ATan(torch.autograd.Function):
    """Heaviside forward; arctan surrogate backward (as snntorch.surrogate.atan)."""

    @staticmethod
    def forward(ctx, x, alpha):
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return ctx.alpha / 2 / (1 + (math.pi / 2 * ctx.alpha * x).pow(2)) * grad_output, None


class _FastSigmoid(torch.autograd.Function):
    """Heaviside forward; fast-sigmoid surrogate backward (as snntorch.surrogate.fast_sigmoid)."""

    @staticmethod
    def forward(ctx, x, slope):
        ctx.save_for_backward(x)
        ctx.slope = slope
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output / (ctx.slope * x.abs() + 1.0) ** 2, None


_SPIKE_FUNCTIONS = {"atan": _ATan, "fast_sigmoid": _FastSigmoid}


def lif_step(input_, mem, beta, thresh, spike_fn, scale):
    """One LIF update (the module docstring's three lines); returns ``(spk, mem)``.

    Pure element-wise arithmetic, so ``sae.engine`` can fuse it into one kernel.
    """
    reset = (mem - thresh > 0).to(mem.dtype)  # detached: a comparison has no gradient
    mem = _clamp01(beta) * mem + input_ - reset * thresh
    return spike_fn.apply(mem - thresh, scale), mem


class LIF(nn.Module):
    """A stateless leaky integrate-and-fire neuron layer.

    ``forward(input_, mem)`` takes the previous membrane and returns ``(spk, mem)``;
    ``beta`` and ``thresh`` given there replace the layer's own for that call.
    The buffers carry snn.Leaky's names (``threshold``, ``beta``) so state_dicts are interchangeable.
    ``step`` is the update itself; ``sae.engine.fuse`` swaps in a compiled copy.
    """

    step = staticmethod(lif_step)

    def __init__(self, beta: float, thresh: float, surrogate: str = "atan", scale: float = 2.0):
        super().__init__()
        self.register_buffer("threshold", torch.as_tensor(float(thresh)))
        self.register_buffer("graded_spikes_factor", torch.as_tensor(1.0))
        self.register_buffer("reset_mechanism_val", torch.as_tensor(0))  # 0: reset by subtraction
        self.register_buffer("beta", torch.as_tensor(float(beta)))
        self.spike_fn = _SPIKE_FUNCTIONS[surrogate]
        self.scale = scale

    def forward(self, input_, mem, beta=None, thresh=None):
        beta = self.beta if beta is None else beta
        thresh = self.threshold if thresh is None else thresh
        if mem is None:
            mem = torch.zeros_like(input_)
        return self.step(input_, mem, beta, thresh, self.spike_fn, self.scale)


def _clamp01(beta):
    return beta.clamp(0, 1) if torch.is_tensor(beta) else min(max(beta, 0.0), 1.0)


@dataclass
class Trace:
    """What happened inside one forward: per layer, spikes and membrane at every step.

    ``spikes[name]`` and ``mem[name]`` have shape ``[T, B, ...layer shape]``;
    ``mem["output"][t]`` is the reconstruction after step ``t``.
    """

    spikes: dict
    mem: dict

    @property
    def outputs(self) -> torch.Tensor:
        return self.mem["output"]

    @property
    def num_steps(self) -> int:
        return self.outputs.shape[0]

    def spike_rates(self) -> dict:
        """Fraction of (neuron, step) pairs that fired, per spiking layer."""
        return {name: float(s.detach().float().mean()) for name, s in self.spikes.items() if name != "output"}


class SpikingAutoencoder(nn.Module):
    """The tutorial's convolutional spiking autoencoder: encoder, linearNet and decoder, all spiking."""

    def __init__(self, config: SAEConfig | None = None):
        super().__init__()
        self.config = config = config or SAEConfig()
        side = config.input_size // 8
        flat = 128 * side * side

        def lif(thresh=config.thresh):
            return LIF(config.beta, thresh, config.surrogate, config.scale)

        # (name, module) in signal order; the names are how the rest of the code finds a layer.
        encoder = [
            ("conv1", nn.Conv2d(1, 32, 3, padding=1, stride=2)),
            ("bn1", nn.BatchNorm2d(32)),
            ("enc1", lif()),
            ("conv2", nn.Conv2d(32, 64, 3, padding=1, stride=2)),
            ("bn2", nn.BatchNorm2d(64)),
            ("enc2", lif()),
            ("conv3", nn.Conv2d(64, 128, 3, padding=1, stride=2)),
            ("bn3", nn.BatchNorm2d(128)),
            ("enc3", lif()),
            ("flatten", nn.Flatten(start_dim=1, end_dim=3)),
            ("to_latent", nn.Linear(flat, config.latent_dim)),
            ("latent", lif()),
        ]
        linear = [("from_latent", nn.Linear(config.latent_dim, flat)), ("linear", lif())]
        decoder = [
            ("unflatten", nn.Unflatten(1, (128, side, side))), ("dec0", lif()),
            ("deconv1", nn.ConvTranspose2d(128, 64, 3, padding=1, stride=2, output_padding=1)), ("bn4", nn.BatchNorm2d(64)),
            ("dec1", lif()),
            ("deconv2", nn.ConvTranspose2d(64, 32, 3, padding=1, stride=2, output_padding=1)), ("bn5", nn.BatchNorm2d(32)),
            ("dec2", lif()),
            ("deconv3", nn.ConvTranspose2d(32, 1, 3, padding=1, stride=2, output_padding=1)),
            ("output", lif(config.output_thresh)),
        ]  # fmt: skip
        # The tutorial's three Sequentials, so state_dict keys match its class ...
        self.encoder = nn.Sequential(*(m for _, m in encoder))
        self.linearNet = nn.Sequential(*(m for _, m in linear))
        self.decoder = nn.Sequential(*(m for _, m in decoder))
        # ... and every layer by name: a plain dict, not a submodule, so the state_dict stays the tutorial's.
        self.layers = dict(encoder + linear + decoder)
        for name, layer in self.spiking_layers():
            layer.layer_name = name  # a plain attribute: not in the state_dict

    def spiking_layers(self) -> list[tuple[str, LIF]]:
        return [(name, self.layers[name]) for name in LAYER_NAMES]

    def state_key(self, layer: str, tensor: str) -> str:
        """The state_dict key of ``tensor`` in the named layer: ``state_key("to_latent", "weight")``."""
        module = self.layers[layer]
        path = next(path for path, m in self.named_modules() if m is module)
        return f"{path}.{tensor}"

    def forward(self, x, *, settings: NeuronSettings | None = None, trace=False, every_step=False, fast=False):
        """Reconstruct ``x`` ([B, 1, H, W] in [0, 1]).

        Returns the last step's output membrane ``[B, 1, H, W]``; with ``every_step``
        the output membrane of every step ``[T, B, 1, H, W]``; with ``trace`` also a
        :class:`Trace`.  ``settings`` replace the trained thresh, beta and num_steps for
        this call only (the output layer keeps its huge threshold); ``None`` runs the
        layers' own values.  It is exactly ``decode(encode(x))``: the tutorial's two loops.
        ``fast`` is the fast engine's training pass (sae.engine): the same math with two
        shortcuts, see ``_encode_steps`` and ``_output_once``.
        """
        steps = self.config.num_steps if settings is None else settings.num_steps
        record = _new_record() if trace else None
        latent = self._encode_steps(x, steps, settings, record, fast)
        if fast and not (trace or every_step) and self._output_cannot_fire(steps):
            return self._output_once(latent, settings)
        outputs = self._decode_steps(latent, settings, record)
        result = outputs if every_step else outputs[-1]
        return (result, _to_trace(record)) if trace else result

    def encode(self, x, *, settings: NeuronSettings | None = None, trace=False):
        """The latent code of ``x``: spikes ``[T, B, latent_dim]`` of 0/1 (with ``trace``,
        also a :class:`Trace` of the encoder layers enc1 .. latent).  ``settings`` as in forward."""
        steps = self.config.num_steps if settings is None else settings.num_steps
        record = _new_record() if trace else None
        latent = self._encode_steps(x, steps, settings, record)
        return (latent, _to_trace(record)) if trace else latent

    def decode(self, latent_spikes, *, settings: NeuronSettings | None = None, trace=False):
        """The decoder as a function: latent spikes ``[T, B, latent_dim]`` (any code, edited
        or made up) -> output membrane per step ``[T, B, 1, H, W]``; with ``trace``, also a
        :class:`Trace` of linear .. output.  Runs only linearNet and the decoder, T steps:
        the code's own length, so ``settings`` give thresh and beta only."""
        latent_dim = self.config.latent_dim
        if latent_spikes.ndim != 3 or latent_spikes.shape[2] != latent_dim:
            raise ValueError(f"latent spikes must have shape [T, B, {latent_dim}], got {tuple(latent_spikes.shape)}")
        if problem := LIMITS["num_steps"].problem(latent_spikes.shape[0]):
            raise ValueError(f"a code of {latent_spikes.shape[0]} steps: {problem}")
        record = _new_record() if trace else None
        outputs = self._decode_steps(latent_spikes, settings, record)
        return (outputs, _to_trace(record)) if trace else outputs

    def _encode_steps(self, x, steps, settings, record, fast=False):
        """The tutorial's first loop: present the same image ``steps`` times; latent spikes [T, B, D].

        The first conv + BN see the same image at every step, so they can run once.  At
        inference that changes nothing.  In training it is the "fast" engine's first shortcut:
        BatchNorm gets the same batch statistics and T running-statistic updates
        (:func:`batch_norm_repeated`), but conv1's gradient is summed in another fp32
        order, so it is held to the tutorial by tolerances (tests/test_engine.py).  Without
        it, training keeps the tutorial's per-step calls, bit for bit."""
        beta, thresh = _values(settings)
        mem = {}
        if fast or not self.training:
            once = self.first_layer(x, repeats=steps)
            return torch.stack([self.encoder_step(once, mem, beta=beta, thresh=thresh, record=record) for _ in range(steps)])
        modules = list(self.encoder)
        return torch.stack([self._through(modules, x, mem, beta, thresh, record) for _ in range(steps)])

    def first_layer(self, x, repeats: int = 1):
        """conv1 + BN of ``x``: what the encoder's first LIF receives, the same at every step
        (``repeats`` steps' worth of running-statistic updates in training)."""
        return batch_norm_repeated(self.layers["bn1"], self.layers["conv1"](x), repeats=repeats)

    def encoder_step(self, first, mem: dict, *, beta=None, thresh=None, record=None):
        """One step of the tutorial's first loop, from ``first = first_layer(x)`` to the latent
        spikes.  ``mem`` maps layer names to membranes (empty before step 1) and is updated in
        place.  ``beta``/``thresh``: a NeuronSettings' values, or 0-d tensors (the inputs of the
        graph the browser runs, sae.io.browser_model); None: the trained ones."""
        return self._through(list(self.encoder)[2:], first, mem, beta, thresh, record)

    def decoder_step(self, latent_spikes, mem: dict, *, beta=None, thresh=None, record=None):
        """One step of the tutorial's second loop: one step's latent spikes to the output membrane.
        ``mem``, ``beta``, ``thresh`` as in :meth:`encoder_step`; decoding step t needs only step t's
        latent spikes."""
        self._through(list(self.linearNet) + list(self.decoder), latent_spikes, mem, beta, thresh, record)
        return mem["output"]

    def _decode_steps(self, latent, settings, record):
        """The tutorial's second loop: decode each step's latent spikes; output membrane [T, B, 1, H, W]."""
        beta, thresh = _values(settings)
        mem = {}
        return torch.stack([self.decoder_step(spikes, mem, beta=beta, thresh=thresh, record=record) for spikes in latent])

    @torch.compiler.disable  # a Python bool: under torch.compile it runs eager, without a warning
    def _output_cannot_fire(self, steps) -> bool:
        """True when the output layer's membrane stays below its threshold whatever the spikes:
        its input per step is at most sum|W| + |b| (spikes are 0 or 1), over at most ``steps`` steps."""
        conv, out = self.layers["deconv3"], self.layers["output"]
        with torch.no_grad():
            bound = steps * (conv.weight.abs().sum() + conv.bias.abs().sum())
        return bool(bound < out.threshold)

    def _output_once(self, latent, settings):
        """The last step's output membrane, with the output layer's conv run once instead of T times.

        The output layer never fires (``_output_cannot_fire``), so it only integrates:
        mem_t = b·mem_{t-1} + conv(s_t) with b = clamp(beta, 0, 1) and s_t dec2's spikes.
        The conv is linear, so mem_T = W ∗ S_T + bias·(1 + b + … + b^{T-1}) with
        S_t = b·S_{t-1} + s_t: the same sum in another fp32 order.  At 32 channels in and
        one out, that conv is the slowest per multiply of the whole model on a CPU."""
        *body, conv, out = list(self.linearNet) + list(self.decoder)
        b = torch.as_tensor(_clamp01(out.beta if settings is None else settings.beta), dtype=latent.dtype, device=latent.device)
        mem, leaky_sum, weight_sum = {}, None, 0.0
        for spikes in latent:
            s = self._through(body, spikes, mem, *_values(settings), None)
            leaky_sum = s if leaky_sum is None else torch.addcmul(s, leaky_sum, b)  # b·S + s in one pass
            weight_sum = b * weight_sum + 1.0
        w = F.conv_transpose2d(leaky_sum, conv.weight, None, conv.stride, conv.padding, conv.output_padding, conv.groups, conv.dilation)
        return w + conv.bias.view(1, -1, 1, 1) * weight_sum

    @staticmethod
    def _through(modules, h, mem, beta, thresh, record):
        """One time step through ``modules``; ``mem`` carries each LIF's membrane to the next step.
        ``thresh`` applies to every spiking layer but the output, which never fires."""
        for module in modules:
            if isinstance(module, LIF):
                name = module.layer_name
                h, mem[name] = module(h, mem.get(name), beta=beta, thresh=None if name == "output" else thresh)
                if record is not None:
                    record["spikes"].setdefault(name, []).append(h)
                    record["mem"].setdefault(name, []).append(mem[name])
            else:
                h = module(h)
        return h


def _values(settings: NeuronSettings | None) -> tuple:
    """(beta, thresh) for the LIF layers; (None, None): the trained values."""
    return (None, None) if settings is None else (settings.beta, settings.thresh)


@contextlib.contextmanager
def buffers_kept(model: nn.Module):
    """Passes inside this block leave the model's buffers (BatchNorm's running statistics and
    batch count) and its train/eval mode as they were: for looking at a model in training mode."""
    saved = [b.detach().clone() for b in model.buffers()]
    was_training = model.training
    try:
        yield model
    finally:
        with torch.no_grad():
            for live, kept in zip(model.buffers(), saved):
                live.copy_(kept)
        model.train(was_training)


def batch_norm_repeated(bn: nn.BatchNorm2d, h: torch.Tensor, repeats: int) -> torch.Tensor:
    """``bn(h)`` as if called ``repeats`` times on the same ``h``: the same output (in training,
    normalised by the batch statistics of ``h``), and ``repeats`` updates of the running statistics."""
    if not bn.training:
        return bn(h)
    # momentum 1: the kernel leaves the batch mean and unbiased variance in these buffers.
    mean, var = h.new_zeros(bn.num_features), h.new_ones(bn.num_features)
    out = F.batch_norm(h, mean, var, bn.weight, bn.bias, training=True, momentum=1.0, eps=bn.eps)
    with torch.no_grad():
        for _ in range(repeats):
            bn.num_batches_tracked += 1
            momentum = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
            bn.running_mean.mul_(1 - momentum).add_(mean, alpha=momentum)
            bn.running_var.mul_(1 - momentum).add_(var, alpha=momentum)
    return out


def _new_record() -> dict:
    return {"spikes": {}, "mem": {}}


def _to_trace(record: dict) -> Trace:
    """Stack the per-step lists into ``[T, B, ...]`` tensors, layers in signal order."""
    names = [n for n in LAYER_NAMES if n in record["spikes"]]
    return Trace(spikes={n: torch.stack(record["spikes"][n]) for n in names}, mem={n: torch.stack(record["mem"][n]) for n in names})


def reconstruction_loss(model, images, loss: str, **forward_options):
    """MSE on the last step's output membrane, or averaged over every step's output."""
    if loss == "every":
        outputs = model(images, every_step=True, **forward_options)
        return F.mse_loss(outputs, images.unsqueeze(0).expand_as(outputs))
    return F.mse_loss(model(images, **forward_options), images)
