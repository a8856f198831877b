"""The spiking autoencoder and everything asked of it: no Streamlit here (docs/architecture.md)."""

import os
from pathlib import Path

import torch


def _keep_compiled_kernels_with_the_project() -> None:
    """Inductor caches compiled kernels on disk: keep them in the project's .cache/ unless the user
    chose a place.  Set before anything imports ``torch._dynamo``, which fixes the folder when it is
    imported.  One folder per CPU capability: Inductor's cache key leaves it out, and kernels built
    for another vector width (``ATEN_CPU_CAPABILITY=avx2`` on an AVX-512 machine) gave wrong spikes
    when a later run loaded them."""
    capability = torch.backends.cpu.get_cpu_capability().lower()
    folder = Path(__file__).resolve().parent.parent / ".cache" / f"inductor-{capability}"
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(folder))


_keep_compiled_kernels_with_the_project()
