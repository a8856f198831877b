"""Shared test set-up: the repo root on sys.path, CPU only (unless SAE_TEST_DEVICE=cuda), quiet threads,
and the markers that ``make test-fast`` leaves out (pyproject.toml lists them).

``browser`` and ``services`` are given here, from where a test lives and what its module uses, so a new
test cannot forget them; ``slow`` is written on the test itself (``@pytest.mark.slow``).
"""

import asyncio
import concurrent.futures
import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Hypothesis times every example (its deadline) and the making of the examples (the too_slow health
# check): both measure the machine as much as the code, so no test here depends on them.
settings.register_profile("any-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("any-machine")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
if os.environ.get("SAE_TEST_DEVICE") != "cuda":  # benchmarks/gpu_check.sh sets it to run tests/test_cuda.py
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

BROWSER_TESTS = ROOT / "tests" / "browser"
SERVICES_MODULE = "tests.services"  # redis-server, nginx and `sae worker` processes, started per test


def uses_services(module) -> bool:
    """Whether a test module imports anything from tests/services.py (or the module itself)."""
    names = ((getattr(value, "__name__", None), getattr(value, "__module__", None)) for value in vars(module).values())
    return any(SERVICES_MODULE in pair for pair in names)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if BROWSER_TESTS in Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)
        module = getattr(item, "module", None)
        if module is not None and uses_services(module):
            item.add_marker(pytest.mark.services)


def run_async(coro):
    """``asyncio.run`` in a thread of its own: the browser tests' Playwright keeps an event loop
    running in the main thread of the same pytest process, where ``asyncio.run`` refuses to start."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
