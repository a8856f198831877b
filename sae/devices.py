"""Which compute devices exist here, and a clear message when the asked one does not."""

from __future__ import annotations

import torch

DEVICE_NAMES = ("cpu", "cuda", "mps")


class DeviceUnavailableError(RuntimeError):
    """The asked device is not on this machine."""


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def device_status() -> dict[str, str | None]:
    """Each known device mapped to None when usable, or to why it is not."""
    return {
        "cpu": None,
        "cuda": None if torch.cuda.is_available() else "no CUDA GPU is visible to PyTorch on this machine",
        "mps": None if _mps_available() else "Apple Metal (MPS) is only available on Apple-silicon Macs",
    }


def available_devices() -> list[str]:
    return [name for name, why in device_status().items() if why is None]


def best_device() -> str:
    """cuda, then mps, then cpu: the tutorial's order of preference."""
    status = device_status()
    return next((name for name in ("cuda", "mps") if status[name] is None), "cpu")


def resolve_device(name: str | None = "auto") -> torch.device:
    """'auto' picks the best device; a missing one raises DeviceUnavailableError."""
    if name in (None, "", "auto"):
        name = best_device()
    base = str(name).split(":")[0]
    if base not in DEVICE_NAMES:
        raise DeviceUnavailableError(f"unknown device {name!r}: choose one of {', '.join(DEVICE_NAMES)} or auto")
    why = device_status()[base]
    if why:
        raise DeviceUnavailableError(f"device {name!r} is not available: {why}; use one of {', '.join(available_devices())}")
    return torch.device(name)
