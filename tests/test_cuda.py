"""The same checks on a CUDA GPU: run by benchmarks/gpu_check.sh (SAE_TEST_DEVICE=cuda) on a machine with one.

Without a GPU these are skipped; the CPU suite holds the same properties on the CPU.
"""

import pytest
import torch

from sae.analysis.inference import run_digit
from sae.model import SAEConfig
from sae.training.loop import Finished, TrainConfig, seeded_model, train
from tests.test_engine import assert_agrees_with_the_tutorial
from tests.test_model import spiking_pair

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU (benchmarks/gpu_check.sh runs these on one)")


def test_the_fast_engine_agrees_with_the_tutorial_on_cuda():
    torch.manual_seed(3)
    images = torch.rand(32, 1, 32, 32, device="cuda")
    tutorial, ours = spiking_pair()
    assert_agrees_with_the_tutorial(tutorial.cuda(), ours.cuda(), images)


def test_one_digit_on_cuda_matches_the_cpu():
    model = seeded_model(SAEConfig(), 0).eval()
    digit = torch.rand(1, 1, 32, 32)
    settings = model.config.neuron_settings(thresh=0.3)
    on_cpu = run_digit(model, digit, settings)
    on_gpu = run_digit(model.cuda(), digit.cuda(), settings)
    assert on_gpu.device.startswith("cuda")
    flipped = sum(int((on_cpu.spikes[n] != on_gpu.spikes[n]).sum()) for n in on_cpu.spikes)
    assert flipped <= 1e-3 * sum(s.size for s in on_cpu.spikes.values())


@pytest.mark.parametrize("compile", [False, True])
def test_a_short_training_run_on_cuda(compile):
    torch.manual_seed(0)
    images = torch.rand(64, 1, 32, 32)
    cfg = TrainConfig(epochs=1, batch_size=16, lr=6e-3, eval_images=16, device="cuda", compile=compile)
    events = list(train(SAEConfig(), cfg, images, images[:16]))
    finished = events[-1]
    assert isinstance(finished, Finished) and finished.steps == 4
    assert next(finished.model.parameters()).device.type == "cuda"
