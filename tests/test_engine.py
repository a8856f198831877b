"""The fast paths (sae.engine) against the tutorial's code.

``fuse`` is the default fast path: it must pass the foundation's equivalence test
(test_model.py) unchanged, in fp32.  ``compiled`` (the whole model, BatchNorm
included) rounds BatchNorm differently, so in fp32 a membrane within an ulp of
the threshold can fire on one path and not the other; it must stay close.
Compiling takes seconds to a minute on a cold cache (Inductor caches on disk).
"""
import torch
import torch.nn.functional as F

from sae.engine import compiled, fast_train_step, fuse, unfuse
from sae.model import LIF
from tests.test_model import spiking_pair


def _grads(model):
    return {n: p.grad for n, p in model.named_parameters()}


def test_fused_path_matches_the_tutorial_in_fp32():
    torch.manual_seed(1)
    images = torch.rand(16, 1, 32, 32)
    tutorial, ours = spiking_pair()
    fuse(ours)
    assert all("step" in m.__dict__ for m in ours.modules() if isinstance(m, LIF))
    tutorial.train(), ours.train()
    out_t, out_o = tutorial(images), ours(images)
    assert torch.allclose(out_o, out_t, atol=1e-6, rtol=0)
    F.mse_loss(out_t, images).backward()
    F.mse_loss(out_o, images).backward()
    largest = max(float(g.abs().max()) for g in _grads(tutorial).values())
    assert largest > 0
    for name, g in _grads(ours).items():
        assert torch.allclose(g, _grads(tutorial)[name], atol=1e-6 * largest, rtol=0), name
    buffers = dict(tutorial.named_buffers())
    for name, b in ours.named_buffers():
        if "running" in name or "num_batches" in name:
            assert torch.allclose(b.float(), buffers[name].float(), atol=1e-6, rtol=0), name
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
    optimizers = [torch.optim.AdamW(m.parameters(), lr=1e-4, weight_decay=0.001) for m in (tutorial, ours)]
    step = fast_train_step(ours, optimizers[1])
    for _ in range(3):
        tutorial.train()
        optimizers[0].zero_grad()
        loss_t = F.mse_loss(tutorial(images), images)
        loss_t.backward()
        optimizers[0].step()
        loss_o = step(images)
        assert loss_o.item() == loss_t.item()
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
