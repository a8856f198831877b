"""The latent code as something to edit: decode any spike grid, ask what each neuron draws,
blend two digits' codes, map every test image's code in 2-D, and say what a decoded
picture looks like (the nearest class mean).

A *code* here is what the decoder receives for one image, as a numpy ``uint8``
grid ``[latent_dim, T]`` (a row per neuron, a column per step; 1 = spike), the way
the raster is drawn.  The model wants ``[T, B, latent_dim]``: :func:`to_spikes`.
Everything runs the model's ``encode`` / ``decode`` (no state kept on the model), so
one shared model serves every caller.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sae.analysis.inference import single_thread
from sae.io.atomic import atomic_path
from sae.io.fingerprints import digit_fingerprint, model_fingerprint
from sae.model import NeuronSettings

BLEND_STAGES = 8
MAP_BATCH = 500
NEIGHBOURS = 10
MAP_FILES_KEPT = 16  # maps kept on disk (about 1 MB each)
_CODE_TEXT = re.compile(r"^(\d{1,4})x(\d{1,3})-([0-9a-fA-F]*)$")


@dataclass(frozen=True)
class EncodedDigit:
    """One digit's own code and what the network made of it (numpy, batch axis removed)."""

    input: np.ndarray  # [H, W]
    code: np.ndarray  # [latent_dim, T] uint8
    recon: np.ndarray  # [H, W], the output membrane at the last step
    spikes: dict  # spiking layer -> [T, ...] uint8, every layer enc1 .. dec2 (for the operation count)


@dataclass(frozen=True)
class Decoded:
    """What the decoder makes of a batch of codes."""

    images: np.ndarray  # [N, H, W], output membrane at the last step
    spikes: dict  # decoder layer (linear .. dec2) -> [T, N, ...] uint8


def to_spikes(codes: np.ndarray, device="cpu") -> torch.Tensor:
    """Codes ``[latent_dim, T]`` or ``[N, latent_dim, T]`` -> the decoder's input ``[T, N, latent_dim]`` float."""
    codes = np.asarray(codes)
    if codes.ndim == 2:
        codes = codes[None]
    return torch.as_tensor(codes, dtype=torch.float32, device=device).permute(2, 0, 1).contiguous()


def encode_digit(model, digit: torch.Tensor, settings: NeuronSettings | None = None) -> EncodedDigit:
    """Encode ``digit`` ([1, 1, H, W]) and decode its own code: the baseline every edit is compared with.
    ``settings``, here and below, default to the checkpoint's own."""
    device = next(model.parameters()).device
    x = digit.detach().to(device=device, dtype=torch.float32)
    with single_thread(), torch.inference_mode():
        latent, enc = model.encode(x, settings=settings, trace=True)
        out, dec = model.decode(latent, settings=settings, trace=True)
    spikes = {name: s[:, 0].to("cpu", torch.uint8).numpy() for name, s in {**enc.spikes, **dec.spikes}.items() if name != "output"}
    return EncodedDigit(input=x[0, 0].cpu().numpy(), code=spikes["latent"].T.copy(), recon=out[-1, 0, 0].cpu().numpy(), spikes=spikes)


def decode_codes(model, codes: np.ndarray, settings: NeuronSettings | None = None) -> Decoded:
    """Decode codes ``[N, latent_dim, T]`` (or one ``[latent_dim, T]``) in one batched decoder pass
    (T is the codes' own: ``settings`` give thresh and beta)."""
    device = next(model.parameters()).device
    spikes = to_spikes(codes, device)
    with single_thread(), torch.inference_mode():
        out, trace = model.decode(spikes, settings=settings, trace=True)
    layers = {name: s.to("cpu", torch.uint8).numpy() for name, s in trace.spikes.items() if name != "output"}
    return Decoded(images=out[-1, :, 0].cpu().numpy(), spikes=layers)


def edited_spikes(digit: EncodedDigit, code: np.ndarray, decoded: Decoded, index: int = 0) -> dict:
    """Every layer's spikes for an edited code: the encoder's own (it saw the same image), the
    edited latent code, and the decoder's answer to it; what ``sae.analysis.energy`` counts."""
    spikes = {name: s for name, s in digit.spikes.items() if name.startswith("enc")}
    spikes["latent"] = np.ascontiguousarray(np.asarray(code, np.uint8).T)
    spikes.update({name: s[:, index] for name, s in decoded.spikes.items()})
    return spikes


# --- edits ----------------------------------------------------------------------------


def flip(code: np.ndarray, neuron: int, step: int) -> np.ndarray:
    """A copy of ``code`` with one spike toggled."""
    _check_cell(code, neuron, step)
    out = code.copy()
    out[neuron, step] ^= 1
    return out


def set_neuron(code: np.ndarray, neuron: int, firing: bool) -> np.ndarray:
    """A copy with ``neuron`` silent at every step (``firing=False``) or firing at every step."""
    _check_cell(code, neuron, 0)
    out = code.copy()
    out[neuron] = 1 if firing else 0
    return out


def _check_cell(code: np.ndarray, neuron: int, step: int) -> None:
    neurons, steps = code.shape
    if not (0 <= neuron < neurons and 0 <= step < steps):
        raise ValueError(f"no cell (neuron {neuron}, step {step}) in a {neurons} x {steps} code")


def code_to_text(code: np.ndarray) -> str:
    """A code as short URL-safe text: ``"<neurons>x<steps>-<hex>"``, the bits row by row (neuron 0 first)."""
    code = np.asarray(code, np.uint8)
    return f"{code.shape[0]}x{code.shape[1]}-" + np.packbits(code.reshape(-1)).tobytes().hex()


def code_from_text(text: str, neurons: int, steps: int) -> np.ndarray:
    """Parse :func:`code_to_text`'s form for a ``neurons`` x ``steps`` code; ValueError says what is wrong."""
    match = _CODE_TEXT.match(text.strip())
    if not match:
        raise ValueError("it is not of the form <neurons>x<steps>-<hex digits>")
    n, t, digits = int(match[1]), int(match[2]), match[3]
    if (n, t) != (neurons, steps):
        raise ValueError(f"it is a {n} x {t} code and this model at these settings uses {neurons} x {steps}")
    size = n * t
    if len(digits) != 2 * ((size + 7) // 8):
        raise ValueError(f"a {n} x {t} code needs {2 * ((size + 7) // 8)} hex digits, it has {len(digits)}")
    bits = np.unpackbits(np.frombuffer(bytes.fromhex(digits), np.uint8))
    if bits[size:].any():
        raise ValueError("it has bits set past its last cell")
    return bits[:size].reshape(n, t).astype(np.uint8)


# --- what each neuron draws -------------------------------------------------------------


@dataclass(frozen=True)
class NeuronAtlas:
    """Per latent neuron: its image alone, and the change it makes to the digit's own code."""

    alone: np.ndarray  # [D, H, W]: decoded with only that neuron firing, at every step
    change: np.ndarray  # [D, H, W]: decoded(toggled code) - decoded(own code)
    added: np.ndarray  # [D] bool: True = the neuron was silent and was added; False = it fired and was removed
    effect: np.ndarray  # [D]: mean squared change, how much the neuron matters to this digit


def neuron_atlas(model, digit: EncodedDigit, settings: NeuronSettings | None = None) -> NeuronAtlas:
    """Two questions per neuron in one batched decoder pass (2 x latent_dim codes).

    *Alone*: only neuron n fires, at every step.  *Toggled*: the digit's own code
    with n removed if it fired at all, else added at every step.
    """
    own = digit.code
    neurons = own.shape[0]
    added = ~own.any(axis=1)
    alone = np.zeros((neurons, *own.shape), np.uint8)
    alone[np.arange(neurons), np.arange(neurons)] = 1
    toggled = np.repeat(own[None], neurons, axis=0)
    toggled[np.arange(neurons), np.arange(neurons)] = added[:, None].astype(np.uint8)
    images = decode_codes(model, np.concatenate([alone, toggled]), settings).images
    change = images[neurons:] - digit.recon[None]
    return NeuronAtlas(alone=images[:neurons], change=change, added=added, effect=(change**2).mean(axis=(1, 2)))


# --- between two digits ---------------------------------------------------------------


def blend(code_a: np.ndarray, code_b: np.ndarray, stages: int = BLEND_STAGES) -> np.ndarray:
    """Codes ``[stages, D, T]`` going from A (first) to B (last), whole spike trains at a time.

    The neurons whose rows differ are ranked by how much they differ (Hamming
    distance over the steps, most first; ties by neuron number); stage s of S takes
    B's row for the first ``s * d / (S - 1)`` (rounded half up) of the d differing neurons and A's
    for the rest.  Deterministic (a shared link shows the same row), and every stage
    is made of spike trains one of the two digits really produced, so no stage holds
    a temporal pattern the encoder never made (a random rate-coded mix would, and
    would need a seed to repeat).
    """
    if code_a.shape != code_b.shape:
        raise ValueError(f"codes differ in shape: {code_a.shape} vs {code_b.shape}")
    if stages < 2:
        raise ValueError("a blend needs at least 2 stages (A and B)")
    distance = (code_a != code_b).sum(axis=1)
    order = np.lexsort((np.arange(len(distance)), -distance))  # most different first, then by neuron
    differing = order[distance[order] > 0]
    out = np.repeat(code_a[None], stages, axis=0)
    for s in range(stages):
        take = differing[: (2 * s * len(differing) + stages - 1) // (2 * (stages - 1))]  # s*d/(S-1), half up
        out[s, take] = code_b[take]
    return out


# --- the map of codes -----------------------------------------------------------------


@dataclass(frozen=True)
class CodeMap:
    """Every image's latent spike counts, projected on their first two principal components."""

    counts: np.ndarray  # [N, D] spikes per neuron over the T steps
    labels: np.ndarray  # [N]
    xy: np.ndarray  # [N, 2]
    mean: np.ndarray  # [D]
    components: np.ndarray  # [2, D]
    explained: np.ndarray  # [2] fraction of the variance each axis carries
    settings: NeuronSettings  # what the images were encoded at

    def project(self, counts: np.ndarray, num_steps: int | None = None) -> np.ndarray:
        """Place codes' counts ``[N, D]`` on the map; counts over another number of steps are rescaled to the map's."""
        return (self._rescaled(counts, num_steps) - self.mean) @ self.components.T

    def neighbours(self, counts: np.ndarray, num_steps: int | None = None, k: int = NEIGHBOURS):
        """The ``k`` nearest images to one code (in spike-count space): their indices and the commonest label."""
        counts = self._rescaled(counts, num_steps)
        distance = ((self.counts - counts) ** 2).sum(axis=1)
        nearest = np.argsort(distance, kind="stable")[:k]
        votes = np.bincount(self.labels[nearest], minlength=10)
        return nearest, int(votes.argmax()), float(votes.max() / k)

    def _rescaled(self, counts: np.ndarray, num_steps: int | None) -> np.ndarray:
        steps = self.settings.num_steps
        return np.asarray(counts, np.float32) * (steps / (num_steps or steps))


def code_map(model, images: torch.Tensor, labels: torch.Tensor, settings: NeuronSettings | None = None, *, batch: int = MAP_BATCH) -> CodeMap:
    """Encode every image (encoder only, in batches), count each neuron's spikes, PCA to 2-D.

    PCA by the SVD of the centred counts ``X - mean = U S V^T``: the map is
    ``(X - mean) V[:, :2]``; each axis's sign is fixed so its largest loading is
    positive, so the same checkpoint always draws the same map.
    """
    settings = model.config.neuron_settings() if settings is None else settings
    device = next(model.parameters()).device
    counts = []
    with torch.inference_mode():
        for start in range(0, len(images), batch):
            x = images[start : start + batch].to(device=device, dtype=torch.float32)
            latent = model.encode(x, settings=settings)
            counts.append(latent.sum(0).to("cpu", torch.int16))
    counts = torch.cat(counts).numpy()
    x = torch.as_tensor(counts, dtype=torch.float64)
    mean = x.mean(0)
    _, s, vh = torch.linalg.svd(x - mean, full_matrices=False)
    components = vh[:2]
    sign = torch.sign(components.gather(1, components.abs().argmax(1, keepdim=True)))
    components = components * torch.where(sign == 0, 1.0, sign)
    variance = s**2
    explained = (variance[:2] / variance.sum().clamp_min(1e-12)).numpy()
    xy = ((x - mean) @ components.T).numpy()
    return CodeMap(
        counts=counts,
        labels=labels.numpy().astype(np.int64),
        xy=xy.astype(np.float32),
        mean=mean.numpy().astype(np.float32),
        components=components.numpy().astype(np.float32),
        explained=explained,
        settings=settings,
    )


def cached_code_map(model, images: torch.Tensor, labels: torch.Tensor, folder: Path, settings: NeuronSettings | None = None) -> CodeMap:
    """:func:`code_map`, kept on disk under the weights', the images' and the settings' fingerprint, so
    each checkpoint's 10,000 encodings (many seconds on a small CPU) are paid once, not once per
    process.  The folder keeps the :data:`MAP_FILES_KEPT` most recently used maps."""
    settings = model.config.neuron_settings() if settings is None else settings
    name = f"{model_fingerprint(model)}-{digit_fingerprint(images)}-{settings.thresh:g}-{settings.beta:g}-{settings.num_steps}"
    path = Path(folder) / f"{name}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as f:
                kept = NeuronSettings(float(f["thresh"]), float(f["beta"]), int(f["num_steps"]))
                found = CodeMap(**{k: f[k] for k in _ARRAYS}, settings=kept)
            os.utime(path)  # recently used: kept longest
            return found
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache file: compute again and overwrite it
    built = code_map(model, images, labels, settings)
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **{k: getattr(built, k) for k in _ARRAYS}, thresh=settings.thresh, beta=settings.beta, num_steps=settings.num_steps)
        for old in sorted(Path(folder).glob("*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)[MAP_FILES_KEPT:]:
            old.unlink(missing_ok=True)
    except OSError:
        pass  # a read-only folder: the map still works, it is just not kept
    return built


_ARRAYS = ("counts", "labels", "xy", "mean", "components", "explained")


# --- what a picture looks like --------------------------------------------------------


def mse(image: np.ndarray, target: np.ndarray) -> float:
    """Mean squared error per pixel."""
    return float(np.mean((np.asarray(image) - np.asarray(target)) ** 2))


def class_means(images: torch.Tensor, labels: torch.Tensor, classes: int = 10) -> np.ndarray:
    """The average image of each class ``[classes, H, W]`` (images ``[N, 1, H, W]``): a plain
    yardstick for "what does this picture look like", with nothing learned that could mislead."""
    return np.stack([images[labels == d, 0].float().mean(0).numpy() for d in range(classes)])


def nearest_class(images: np.ndarray, means: np.ndarray) -> np.ndarray:
    """For each image ``[N, H, W]``, the class whose mean image is nearest (squared distance)."""
    return ((np.asarray(images)[:, None] - means[None]) ** 2).sum(axis=(2, 3)).argmin(axis=1)


@dataclass(frozen=True)
class EditJudged:
    """The editor's numbers: how far an edited code's picture is from the input, and what it looks like."""

    cells: int  # cells that differ from the digit's own code
    own_mse: float  # the own code's reconstruction against the input
    mse: float  # the edited code's picture against the input
    looks_like: int  # the nearest class mean to the edited picture
    own_looks_like: int  # ... and to the own reconstruction


def judge_edit(digit: EncodedDigit, code: np.ndarray, image: np.ndarray, means: np.ndarray) -> EditJudged:
    """``image`` is what the decoder made of ``code``, an edit of ``digit``'s own code."""
    looks, own_looks = nearest_class(np.stack([image, digit.recon]), means)
    return EditJudged(
        cells=int((np.asarray(code) != digit.code).sum()),
        own_mse=mse(digit.recon, digit.input),
        mse=mse(image, digit.input),
        looks_like=int(looks),
        own_looks_like=int(own_looks),
    )


def class_turns(atlas: NeuronAtlas, own_recon: np.ndarray, means: np.ndarray) -> tuple[int, dict[int, int]]:
    """The class the digit's own reconstruction looks like, and the neurons whose toggle makes it look
    like another one (neuron -> that class), the neuron with the largest effect first."""
    own_class = int(nearest_class(own_recon[None], means)[0])
    classes = nearest_class(own_recon[None] + atlas.change, means)
    return own_class, {int(n): int(classes[n]) for n in np.argsort(-atlas.effect, kind="stable") if classes[n] != own_class}


def switch_stage(images: np.ndarray) -> int | None:
    """The first stage of a blend ``[S, H, W]`` whose picture is nearer (by MSE) to B's, the last,
    than to A's, the first; None when none is."""
    to_a = ((images - images[0]) ** 2).mean(axis=(1, 2))
    to_b = ((images - images[-1]) ** 2).mean(axis=(1, 2))
    return next((s for s in range(len(images)) if to_b[s] < to_a[s]), None)
