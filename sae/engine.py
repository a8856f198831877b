"""The fast paths: the same model, with the first conv once per batch and its element-wise work compiled.

``training_loss(model, images, loss)`` is what training runs.  The default engine,
"fast", is the model's ``forward(fast=True)``: the first conv + BatchNorm once per
batch, and, for the last step's loss, the output layer's conv once on the leaky sum
of its input spikes (the output layer never fires, so it is linear); on a fused
model, the LIF updates compiled.  That is the tutorial's math with the fp32 rounding
moved, held to the tutorial's code within stated tolerances (tests/test_engine.py).  The "reference" engine is the tutorial's loops as they are
(``sae.model.reconstruction_loss``), bit-exact to its code, fused or not.

For inference (Explore, Compare, the evaluations):
``fuse(model)`` (the default fast path) compiles only the LIF update, the ten or
so element-wise operations per layer and step that dominate eager time besides
the convolutions, into one kernel each way.  Convolutions, BatchNorm and linear
layers keep running the same aten kernels in the same order, and Inductor's C++
keeps the LIF arithmetic's rounding, so the result is bit-exact to the eager
model, and so to the tutorial's code, in fp32 (tests/test_engine.py).

``compiled(model)`` compiles the whole forward, BatchNorm included.  It is
faster, but Inductor computes BatchNorm's statistics in a different order, and in
fp32 that rounding difference flips the rare spikes that sit within an ulp of a
threshold, so its results are close to, not equal to, the tutorial's.  It stays a
contender in ``python -m benchmarks.engine``, which times every path here against
the tutorial's code (docs/performance.md has the figures and what was dropped).

Compiled kernels are cached on disk by Inductor (in the project's .cache/, see
``sae/__init__.py``): only the first run on a machine pays the compile time.
"""

from __future__ import annotations

import torch
import torch._dynamo
from torch import nn

from sae.model import LIF, buffers_kept, lif_step, reconstruction_loss

# Dynamo still compiles a few variants of the one LIF function: it specialises ranks
# (2-D latent, 4-D maps), size-1 dimensions (the output's single channel, a batch of
# one digit) and whether the membrane needs a gradient.  Training and inference
# together need about a dozen, past the default limit of 8, after which it silently
# ran eager.  The variants are bounded (tests/test_engine.py counts them), so allow them.
RECOMPILE_LIMIT = 32
torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
_compiled_lif_step = torch.compile(lif_step, dynamic=True)


def _fused_lif_step(input_, mem, beta, thresh, spike_fn, scale):
    """The compiled LIF update.  beta and the threshold go in as 0-d tensors, so a new
    value (a slider, a sweep) is an input of the same kernel, not a constant to compile for."""
    beta = torch.as_tensor(beta, dtype=input_.dtype, device=input_.device)
    thresh = torch.as_tensor(thresh, dtype=input_.dtype, device=input_.device)
    return _compiled_lif_step(input_, mem, beta, thresh, spike_fn, scale)


def training_loss(model, images, loss: str = "last", engine: str = "fast"):
    """The reconstruction loss of ``images`` as training computes it, on either engine (module docstring)."""
    return reconstruction_loss(model, images, loss, fast=engine == "fast")


def compile_now(model: nn.Module, images: torch.Tensor, loss: str = "last", engine: str = "fast") -> None:
    """Compile a fused model's training and inference kernels now, before a run's clock starts.

    One forward and backward on ``images`` as training computes it, and one forward
    without gradients in eval mode, as the evaluations run.  Afterwards the model is as
    it was: BatchNorm's running statistics restored, no gradients.  Kernels come from
    Inductor's disk cache after a machine's first run, so this costs seconds once."""
    with buffers_kept(model):
        training_loss(model.train(), images, loss, engine).backward()
        model.zero_grad(set_to_none=True)
        with torch.no_grad():
            model.eval()(images)


def fuse(model: nn.Module) -> nn.Module:
    """Switch ``model``'s LIF layers, in place, to the compiled update; returns ``model``."""
    for module in model.modules():
        if isinstance(module, LIF):
            module.step = _fused_lif_step
    return model


def unfuse(model: nn.Module) -> nn.Module:
    """Undo :func:`fuse`: back to the eager update (the class's ``step``)."""
    for module in model.modules():
        if isinstance(module, LIF):
            module.__dict__.pop("step", None)
    return model


def compiled(model: nn.Module) -> nn.Module:
    """The whole ``model`` compiled for fixed shapes (not bit-exact in fp32; see above)."""
    return torch.compile(model, dynamic=False)


def fast_train_step(model, optimizer, loss: str = "last", engine: str = "fast", fused: bool = True, whole: bool = False):
    """One optimizer step (forward, MSE, backward, update) on ``engine``, LIF updates fused if
    ``fused``, or with the whole model compiled."""
    if whole:
        model = compiled(model)
    elif fused:
        fuse(model)

    def step(images):
        optimizer.zero_grad(set_to_none=True)
        value = training_loss(model, images, loss, engine)
        value.backward()
        optimizer.step()
        return value

    return step
