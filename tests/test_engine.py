"""The fast paths (sae.engine) against the tutorial's code.

``fuse`` is the default fast path: it must pass the foundation's equivalence test
(test_model.py) unchanged, in fp32.  ``compiled`` (the whole model, BatchNorm
included) rounds BatchNorm differently, so in fp32 a membrane within an ulp of
the threshold can fire on one path and not the other; it must stay close.
Compiling takes seconds to a minute on a cold cache (Inductor caches on disk).
"""

import torch
import torch.nn.functional as F

from benchmarks.tutorial_sae import tutorial_optimizer, tutorial_train_step
from sae.engine import compiled, fast_train_step, fuse, unfuse
from sae.model import LIF
from tests.test_model import assert_train_step_matches_tutorial, spiking_pair


def test_fused_path_matches_the_tutorial_in_fp32():
    torch.manual_seed(1)
    images = torch.rand(16, 1, 32, 32)
    tutorial, ours = spiking_pair()
    fuse(ours)
    assert all("step" in m.__dict__ for m in ours.modules() if isinstance(m, LIF))
    assert_train_step_matches_tutorial(tutorial, ours, images)
    tutorial.eval(), ours.eval()
    with torch.no_grad():
        assert torch.allclose(ours(images[:3]), tutorial(images[:3]), atol=1e-6, rtol=0)  # another batch size
        out, trace = ours(images, trace=True, thresh=0.7, num_steps=3)
    unfuse(ours)
    assert not any("step" in m.__dict__ for m in ours.modules() if isinstance(m, LIF))
    with torch.no_grad():
        eager_out, eager_trace = ours(images, trace=True, thresh=0.7, num_steps=3)
    assert torch.equal(out, eager_out)
    assert all(torch.equal(trace.spikes[n], eager_trace.spikes[n]) for n in trace.spikes)


def test_fused_training_steps_equal_the_tutorial_bit_for_bit():
    torch.manual_seed(2)
    images = torch.rand(32, 1, 32, 32)
    tutorial, ours = spiking_pair()
    tutorial_opt = tutorial_optimizer(tutorial)
    step = fast_train_step(ours, tutorial_optimizer(ours))
    for _ in range(3):
        loss_t = tutorial_train_step(tutorial, tutorial_opt, images)
        assert step(images).item() == loss_t.item()
    params = dict(tutorial.named_parameters())
    for name, p in ours.named_parameters():
        assert torch.equal(p, params[name]), name  # bit for bit


def test_whole_model_compile_differs_from_the_tutorial_only_by_rare_spike_flips():
    torch.manual_seed(1)
    images = torch.rand(16, 1, 32, 32)
    tutorial, ours = spiking_pair()
    fast = compiled(ours)
    tutorial.train(), ours.train()
    out_t, out_f = tutorial(images), fast(images)
    differing = float(((out_t - out_f).abs() > 1e-6).float().mean())
    assert differing < 0.02, f"{differing:.1%} of output pixels differ"
    loss_t, loss_f = F.mse_loss(out_t, images), F.mse_loss(out_f, images)
    assert abs(loss_t.item() - loss_f.item()) < 1e-3 * loss_t.item()


def test_the_fused_update_never_falls_back_to_eager():
    """Training, then inference at other batch sizes (one digit too) and other thresholds: every call
    compiled, none left to eager by dynamo's recompile limit, and a new threshold compiles nothing new."""
    from torch._dynamo.utils import counters

    from sae.model import SpikingAutoencoder

    torch._dynamo.reset()  # cold: every variant this test needs is compiled here, and counted
    before = dict(counters["frames"])
    torch.manual_seed(0)
    model = fuse(SpikingAutoencoder())
    optimizer = torch.optim.AdamW(model.parameters(), 1e-3)
    images = torch.rand(8, 1, 32, 32)
    for _ in range(2):
        F.mse_loss(model(images), images).backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    with torch.no_grad():
        for batch in (8, 1, 3):
            model(torch.rand(batch, 1, 32, 32))
            model(torch.rand(batch, 1, 32, 32), thresh=0.7, beta=0.9)
        graphs = counters["stats"]["unique_graphs"]
        model(torch.rand(3, 1, 32, 32), thresh=1.3)
        assert counters["stats"]["unique_graphs"] == graphs  # a new slider value is an input, not a recompile
    frames = {k: counters["frames"][k] - before.get(k, 0) for k in ("total", "ok")}
    assert frames["total"] == frames["ok"] > 0, frames
    unfuse(model)
