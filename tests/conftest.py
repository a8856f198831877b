"""Shared test set-up: the repo root on sys.path, CPU only (unless SAE_TEST_DEVICE=cuda), quiet threads."""

import asyncio
import concurrent.futures
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
if os.environ.get("SAE_TEST_DEVICE") != "cuda":  # benchmarks/gpu_check.sh sets it to run tests/test_cuda.py
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


def run_async(coro):
    """``asyncio.run`` in a thread of its own: the browser tests' Playwright keeps an event loop
    running in the main thread of the same pytest process, where ``asyncio.run`` refuses to start."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
