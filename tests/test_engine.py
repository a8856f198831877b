"""The compiled fast path (sae.engine) against the tutorial's code, in fp32.

Compiling takes a minute or so on a cold cache (Inductor caches it on disk after)."""
import torch
import torch.nn.functional as F

from sae.engine import compiled
from tests.test_model import spiking_pair


def test_compiled_forward_and_gradients_match_tutorial():
    torch.manual_seed(1)
    images = torch.rand(16, 1, 32, 32)
    tutorial, ours = spiking_pair()
    fast = compiled(ours)
    tutorial.train(), ours.train()
    out_t, out_f = tutorial(images), fast(images)
    assert torch.allclose(out_f, out_t, atol=1e-6, rtol=0)
    F.mse_loss(out_t, images).backward()
    F.mse_loss(out_f, images).backward()
    grads_t = dict(tutorial.named_parameters())
    largest = float(max(p.grad.abs().max() for p in grads_t.values()))
    worst = max(float((p.grad - grads_t[n].grad).abs().max()) for n, p in ours.named_parameters())
    assert worst <= 1e-6 * largest, f"largest gradient difference {worst / largest:.2e} of the largest gradient"
    buffers_t = dict(tutorial.named_buffers())
    for name, b in ours.named_buffers():
        if "running" in name:
            assert torch.allclose(b, buffers_t[name], atol=1e-6, rtol=0), name
    tutorial.eval(), ours.eval()
    with torch.no_grad():
        assert torch.allclose(fast(images), tutorial(images), atol=1e-6, rtol=0)
