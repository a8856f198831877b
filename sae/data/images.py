"""Turn a drawing or an upload into what the model saw in training.

MNIST was made by cropping each digit to its ink, scaling the longer side to 20 px,
and placing it in 28x28 by its centre of mass; the tutorial then resizes to 32x32.
A digit that skips these steps (black on white, off-centre, too big) is something
the network never saw, so we do the same steps here.
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch
from PIL import Image, ImageOps

from sae.data.mnist import TRANSFORM


class ImageInputError(ValueError):
    """An image we cannot use; the message is one line, fit to show a user."""



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


