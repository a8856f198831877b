"""Saving and loading model checkpoints, safely.

A checkpoint is a plain dict written with ``torch.save``::

    {"format": "sae-checkpoint", "version": 1, "config": {...}, "state_dict": {...},
     "metrics": {...}, "history": {...}, "provenance": {...}}

Only plain Python values and tensors go in, so it loads with
``torch.load(weights_only=True)``.  Files may come from strangers (uploads), so
loading never unpickles arbitrary objects (``weights_only=True`` passed
explicitly, never retried without it), caps the size, accepts only the zip
format that torch has written since 1.6 (see :func:`_check_container`), and
checks keys, shapes, values and the neuron settings against the config before
``load_state_dict(strict=True)``.  A bare ``state_dict`` saved from the
tutorial's own ``SAE`` class loads too.

Saving is atomic (temporary file in the same folder, fsync, ``os.replace``), so
a crash never leaves a half-written checkpoint where a good one was.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import platform
import re
import sys
import threading
import time
import zipfile
from dataclasses import asdict, dataclass, is_dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import torch

from sae.errors import first_line
from sae.io.atomic import atomic_path
from sae.model import LIF, SAEConfig, SpikingAutoencoder

SHIPPED_DIR = Path(__file__).resolve().parents[2] / "checkpoints"
USER_DIR = Path(os.environ.get("SAE_USER_CHECKPOINTS", "user_checkpoints"))
MAX_CHECKPOINT_BYTES = 20 * 1024 * 1024  # the model is about 1.3 MB

FORMAT = "sae-checkpoint"
VERSION = 1

# A legacy (pre-1.6) torch file starts with the pickled magic number 0x1950a86a20f9469cfc6c.
_LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"
_ZIP_MAGIC = b"PK\x03\x04"


class CheckpointError(ValueError):
    """A checkpoint cannot be saved or loaded; the message is one human line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))  # never more than one line


@dataclass
class Checkpoint:
    model: SpikingAutoencoder
    config: SAEConfig
    metrics: dict
    history: dict
    provenance: dict
    path: Path | None


@dataclass(frozen=True)
class CheckpointInfo:
    name: str  # the file stem, shown in the app
    path: Path
    shipped: bool


# --------------------------------------------------------------------------- saving


def save_checkpoint(path, model: SpikingAutoencoder, *, metrics=None, history=None, provenance=None, overwrite: bool = False) -> Path:
    """Write ``model`` with its config, metrics, history and provenance to ``path``.

    Refuses to overwrite a file in the shipped folder (ever) or any other existing
    file unless ``overwrite``.  Also refuses a model that :func:`load_checkpoint`
    would refuse, so every file written here can be read back.
    """
    path = Path(path)
    _check_writable(path, overwrite)
    config = model.config
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    try:
        _check_state(config, state)
    except CheckpointError as error:
        raise CheckpointError(f"refusing to save: {error}") from None
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": config.to_dict(),
        "state_dict": state,
        "metrics": _plain(metrics or {}),
        "history": _plain(history or {}),
        "provenance": _plain(_complete_provenance(provenance or {})),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def _check_writable(path: Path, overwrite: bool) -> None:
    """The shipped weights are never replaced; other files only when asked to."""
    if not os.path.lexists(path):
        return
    if path.resolve().is_relative_to(Path(SHIPPED_DIR).resolve()):
        raise CheckpointError(f"{path} is a shipped checkpoint and is never overwritten; choose another name")
    if not overwrite:
        raise CheckpointError(f"{path} already exists; choose another name or allow overwriting")


def _complete_provenance(given: dict) -> dict:
    """Fill in how the checkpoint was made, keeping whatever the caller gave."""
    provenance = dict(given)
    provenance.setdefault("command", " ".join(sys.argv))
    provenance.setdefault("date", datetime.now(UTC).isoformat(timespec="seconds"))
    provenance.setdefault("packages", {"torch": _version("torch"), "snntorch": _version("snntorch"), "python": platform.python_version()})
    return provenance


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


_SCALARS = (bool, int, float, str)


def _plain(value):
    """``value`` as plain Python types and CPU tensors, which weights_only can load.

    Numpy and tensor scalars become numbers, tuples and sets lists, dict
    subclasses (defaultdict, ...) plain dicts, dataclasses dicts; anything else
    becomes its ``str`` rather than failing a save at the end of a long training.
    """
    if value is None or isinstance(value, _SCALARS):
        return _scalar(value)
    if isinstance(value, torch.Tensor):
        return value.item() if value.dim() == 0 else value.detach().cpu().clone()
    if isinstance(value, dict):
        return {_scalar(k) if isinstance(k, _SCALARS) else str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return [_plain(v) for v in sorted(value, key=str)]
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    if type(value).__module__ == "numpy":
        return _plain(value.item()) if getattr(value, "ndim", 0) == 0 else torch.as_tensor(value).clone()
    return str(value)


def _scalar(value):
    """A bool/int/float/str subclass (numpy.float64, IntEnum, ...) as the plain type."""
    if value is None or type(value) in _SCALARS:
        return value
    return next(kind for kind in _SCALARS if isinstance(value, kind))(value)


# --------------------------------------------------------------------------- loading


def load_checkpoint(source, *, map_location="cpu") -> Checkpoint:
    """Load and validate a checkpoint from a path or from ``bytes`` (an upload).

    Raises :class:`CheckpointError` with a one-line reason for anything that is
    not a complete, safe checkpoint whose weights match its config.
    """
    path = None
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        _check_size(len(data))
    else:
        path = Path(source)
        data = _read_capped(path)
    _check_container(data)
    obj = _torch_load(data, map_location)
    config, state, extras = _unpack(obj)
    _check_state(config, state)
    model = SpikingAutoencoder(config)
    model.load_state_dict(state, strict=True)
    if isinstance(map_location, (str, torch.device)):
        model.to(map_location)
    model.eval()
    return Checkpoint(model=model, config=config, path=path, **extras)


def _check_size(size: int) -> None:
    if size > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"the file is larger than {_megabytes(MAX_CHECKPOINT_BYTES)} ({_megabytes(size)})")


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.0f} MB" if size >= 2**20 else f"{size} bytes"


def _read_capped(path: Path) -> bytes:
    """The file's bytes; its size is checked on the open file before reading."""
    try:
        with open(path, "rb") as f:
            _check_size(os.fstat(f.fileno()).st_size)
            data = f.read(MAX_CHECKPOINT_BYTES + 1)  # the file could grow meanwhile
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a folder, not a checkpoint file") from None
    except OSError as error:
        raise CheckpointError(f"cannot read {path}: {error.strerror or error}") from None
    _check_size(len(data))
    return data


def _check_container(data: bytes) -> None:
    """Only torch's zip format goes on to torch.load; everything else is refused here.

    Raw pickles can run code and legacy (pre-1.6) torch files allocate whatever
    storage size the file claims (a 1 kB file can ask for 4 GB), so neither is
    accepted.
    """
    if not data:
        raise CheckpointError("the file is empty")
    if data.startswith(_LEGACY_MAGIC):
        raise CheckpointError("an old-format (PyTorch < 1.6) file; it is not accepted: re-save it with a current PyTorch")
    if data.startswith(b"\x80"):
        raise CheckpointError("not a checkpoint: a raw pickle, which could run code; refused")
    if not data.startswith(_ZIP_MAGIC):
        raise CheckpointError("not a checkpoint (not a PyTorch file)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            _check_entries(archive.infolist())
            damaged = archive.testzip()  # CRCs: torch itself does not check them
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, ValueError, OSError, EOFError):
        raise CheckpointError("the file is truncated or corrupt") from None
    if damaged:
        raise CheckpointError(f"the file is truncated or corrupt (bad checksum in {damaged})")


def _check_entries(entries: list[zipfile.ZipInfo]) -> None:
    """A torch archive, stored uncompressed as torch writes it.

    torch.load would inflate compressed entries without limit (a "zip bomb").  Stored
    entries are read back by ``testzip`` before torch sees them, so sizes claimed in
    the zip's headers beyond what the file holds fail there.
    """
    names = [entry.filename for entry in entries]
    if not any(name.endswith("/data.pkl") or name == "data.pkl" for name in names):
        raise CheckpointError("not a checkpoint: a zip file, but not a PyTorch one")
    if any("/code/" in name or name.endswith("/constants.pkl") for name in names):
        raise CheckpointError("not a checkpoint: a TorchScript archive (only state_dicts are accepted)")
    if any(entry.compress_type != zipfile.ZIP_STORED for entry in entries):
        raise CheckpointError("not a checkpoint: it has compressed entries, which PyTorch never writes; refused")


def _torch_load(data: bytes, map_location):
    """torch.load with weights_only=True passed explicitly.

    Explicit, because an environment variable (TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD)
    flips the default when the argument is left out.  Never retried without it.
    """
    try:
        return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True, mmap=False)
    except pickle.UnpicklingError as error:
        found = re.search(r"GLOBAL (\S+?)[.,:;]?(?:\s|$)", str(error))
        if found:
            raise CheckpointError(f"not a safe checkpoint: it tries to load {found.group(1)}; refused") from None
        raise CheckpointError("not a checkpoint: its contents are not plain data; refused") from None
    except MemoryError:
        raise CheckpointError("the file needs more memory than is available") from None
    except Exception as error:  # torch reports damage as RuntimeError, KeyError, EOFError, UnicodeDecodeError...
        raise CheckpointError(f"the file is truncated or corrupt ({first_line(error)})") from None


def _unpack(obj) -> tuple[SAEConfig, dict, dict]:
    """(config, state_dict, {metrics, history, provenance}) from either accepted shape."""
    if not isinstance(obj, dict):
        raise CheckpointError(f"not a checkpoint: it holds a {type(obj).__name__}, not a dict")
    if "format" in obj:
        return _unpack_ours(obj)
    if obj and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        state = dict(obj)
        return _build_config(_infer_config(state)), state, {"metrics": {}, "history": {}, "provenance": {}}
    keys = ", ".join(sorted(map(str, obj))[:5])
    raise CheckpointError(f"not a checkpoint: a dict that is neither a state_dict nor an {FORMAT} (keys: {keys})")


def _unpack_ours(obj: dict) -> tuple[SAEConfig, dict, dict]:
    if obj.get("format") != FORMAT:
        raise CheckpointError(f"not a checkpoint: its format is {obj.get('format')!r}, expected {FORMAT!r}")
    version = obj.get("version")
    if version != VERSION:
        raise CheckpointError(f"checkpoint format version {version!r} is not supported (this app reads version {VERSION})")
    if not isinstance(obj.get("config"), dict):
        raise CheckpointError("the checkpoint has no config")
    state = obj.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise CheckpointError("the checkpoint's state_dict is not a dict of tensors")
    extras = {}
    for key in ("metrics", "history", "provenance"):
        value = obj.get(key) or {}
        if not isinstance(value, dict):
            raise CheckpointError(f"the checkpoint's {key} is a {type(value).__name__}, not a dict")
        extras[key] = value
    return _build_config(obj["config"]), dict(state), extras


def _infer_config(state: dict) -> dict:
    """The default config, with what a bare state_dict tells about itself.

    latent_dim from the first linear layer, beta and thresh from the first spiking
    layer, output_thresh from the last one; so the config describes the weights.
    """
    values = {}
    names = _template(SAEConfig())
    weight = state.get(names.state_key("to_latent", "weight"))
    if weight is not None and weight.dim() == 2:
        values["latent_dim"] = int(weight.shape[0])
    for field, layer, buffer in (("beta", "enc1", "beta"), ("thresh", "enc1", "threshold"), ("output_thresh", "output", "threshold")):
        tensor = state.get(names.state_key(layer, buffer))
        if tensor is not None and tensor.numel() == 1 and not tensor.is_complex():
            values[field] = _short_float(float(tensor))
    return values


def _short_float(value: float) -> float:
    """The shortest decimal that rounds to the same float32 (0.8999999762 -> 0.9)."""
    if not math.isfinite(value):
        return value
    for digits in range(1, 10):
        short = float(f"{value:.{digits}g}")
        if torch.tensor(short, dtype=torch.float32).item() == torch.tensor(value, dtype=torch.float32).item():
            return short
    return value


_INT_FIELDS = ("latent_dim", "num_steps", "input_size")


def _build_config(values: dict) -> SAEConfig:
    try:
        config = SAEConfig.from_dict(values)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"bad config: {error}") from None
    for name in _INT_FIELDS:
        if type(getattr(config, name)) is not int:
            raise CheckpointError(f"bad config: {name} must be an integer, got {getattr(config, name)!r}")
    return config


def _template(config: SAEConfig) -> SpikingAutoencoder:
    """The model built on the meta device (no memory, no initialisation): its keys and shapes."""
    with torch.device("meta"):
        return SpikingAutoencoder(config)


def _check_state(config: SAEConfig, state: dict) -> None:
    """Keys, shapes, dtypes, finite values and neuron settings, against ``config``.

    The expected tensors come from the model built on the meta device (no memory,
    no initialisation), so a config asking for a huge model costs nothing.
    """
    template = _template(config)
    expected = template.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{_count(missing, 'missing key')} ({_few(missing)})")
        if unexpected:
            parts.append(f"{_count(unexpected, 'unexpected key')} ({_few(unexpected)})")
        raise CheckpointError("the weights do not fit the model: " + "; ".join(parts))
    for key, want in expected.items():
        got = state[key]
        if got.shape != want.shape:
            raise CheckpointError(f"wrong shape for {key}: {_shape(got)} but {_needs(config, key)} needs {_shape(want)}")
    for key, want in expected.items():
        got = state[key]
        if got.layout != torch.strided or got.is_quantized or got.is_complex() or got.dtype == torch.bool:
            raise CheckpointError(f"{key} is not a plain real-valued tensor ({got.dtype}, {got.layout})")
        if not want.is_floating_point() and got.is_floating_point():
            raise CheckpointError(f"{key} should hold integers, not {got.dtype}")
        if got.is_floating_point() and not bool(torch.isfinite(got).all()):
            raise CheckpointError(f"{key} contains NaN or infinite values")
        if key.endswith("running_var") and bool((got < 0).any()):
            raise CheckpointError(f"{key} contains negative variances")
    _check_neurons(config, template, state)


def _check_neurons(config: SAEConfig, template: SpikingAutoencoder, state: dict) -> None:
    """Every spiking layer's buffers must say what the config says (one source of truth),
    and use only what this model implements (reset by subtraction, spikes of 1)."""
    prefixes = {id(module): name for name, module in template.named_modules() if isinstance(module, LIF)}
    for layer, module in template.spiking_layers():
        prefix = prefixes[id(module)]
        thresh_field, thresh = ("output_thresh", config.output_thresh) if layer == "output" else ("thresh", config.thresh)
        for buffer, field, value in (("threshold", thresh_field, thresh), ("beta", "beta", config.beta)):
            got = state[f"{prefix}.{buffer}"]
            if not _same_float32(got, value):
                raise CheckpointError(f"{prefix}.{buffer} is {_short_float(float(got)):g} but the config says {field} {value:g}")
        if not _same_float32(state[f"{prefix}.graded_spikes_factor"], 1.0):
            raise CheckpointError(f"{prefix}.graded_spikes_factor is {float(state[f'{prefix}.graded_spikes_factor']):g}; only 1 is supported")
        reset = int(state[f"{prefix}.reset_mechanism_val"])
        if reset != 0:
            raise CheckpointError(
                f"{prefix} resets by {['subtraction', 'zeroing', 'nothing'][reset] if 0 <= reset <= 2 else reset}; "
                "only reset by subtraction is supported"
            )


def _same_float32(tensor: torch.Tensor, value: float) -> bool:
    return tensor.to(torch.float32).item() == torch.tensor(float(value), dtype=torch.float32).item()


def _count(items: list, noun: str) -> str:
    return f"{len(items)} {noun}" + ("" if len(items) == 1 else "s")


def _few(names: list[str], count: int = 3) -> str:
    return ", ".join(names[:count]) + (", ..." if len(names) > count else "")


def _shape(tensor: torch.Tensor) -> str:
    return str(tuple(tensor.shape))


def _needs(config: SAEConfig, key: str) -> str:
    """Which config setting decides the shape of ``key`` (for the error message)."""
    template = _template(config)
    if key in (template.state_key("to_latent", "weight"), template.state_key("to_latent", "bias"), template.state_key("from_latent", "weight")):
        return f"latent_dim {config.latent_dim}"
    return "the model"


# --------------------------------------------------------------------------- listing and names


def list_checkpoints(dirs=None) -> list[CheckpointInfo]:
    """The *.pt files in ``dirs`` (default: shipped, then the user's), shipped first, then by name.

    Cheap: nothing is opened, so a broken file is listed and reported when loaded.  Every
    page run asks (the sidebar), so the listing is kept until a folder's modification
    time changes: adding, removing or renaming a file (an atomic save is a rename) does.
    File times tick coarsely (a few ms), so a folder changed in the last second is always
    read again: two changes within one tick cannot hide the second.
    """
    dirs = tuple(Path(folder) for folder in ((SHIPPED_DIR, USER_DIR) if dirs is None else dirs))
    mtimes = tuple(_mtime_ns(folder) for folder in dirs)
    key = (dirs, mtimes)
    with _LISTING_LOCK:
        if _LISTING.get("key") == key:
            return list(_LISTING["found"])
    shipped_dir = Path(SHIPPED_DIR).resolve()
    found, seen = [], set()
    for folder in dirs:
        if not folder.is_dir():
            continue
        shipped = folder.resolve() == shipped_dir
        for path in folder.glob("*.pt"):
            resolved = path.resolve()
            if path.name.startswith(".") or not path.is_file() or resolved in seen:
                continue
            seen.add(resolved)
            found.append(CheckpointInfo(name=path.stem, path=path, shipped=shipped))
    found.sort(key=lambda info: (not info.shipped, info.name))
    settled = time.time_ns() - max((m for m in mtimes if m is not None), default=0) > _SETTLED_NS
    with _LISTING_LOCK:
        _LISTING.clear()  # one entry at most: it cannot grow
        if settled:
            _LISTING.update(key=key, found=tuple(found))
    return found


_LISTING: dict = {}
_LISTING_LOCK = threading.Lock()
_SETTLED_NS = 1_000_000_000


def _mtime_ns(folder: Path) -> int | None:
    try:
        return folder.stat().st_mtime_ns
    except OSError:
        return None


def default_checkpoint_path() -> Path:
    return Path(SHIPPED_DIR) / "sae_mnist.pt"


_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
MAX_NAME_LENGTH = 64


def safe_name(name: str) -> str:
    """A user-typed name as a safe file stem: letters, digits, ``- _ .``, at most 64.

    Surrounding spaces are dropped, inner spaces become ``_`` and a trailing
    ``.pt`` is dropped; anything that could leave the folder or hide the file
    (separators, ``..``, a leading dot) is refused.
    """
    stem = "_".join(str(name).split())
    if stem.lower().endswith(".pt"):
        stem = stem[:-3]
    if not stem:
        raise CheckpointError("the name is empty")
    if "/" in stem or "\\" in stem:
        raise CheckpointError("the name may not contain / or \\")
    if stem.startswith("."):
        raise CheckpointError("the name may not start with a dot")
    if len(stem) > MAX_NAME_LENGTH:
        raise CheckpointError(f"the name is longer than {MAX_NAME_LENGTH} characters")
    if not _SAFE_NAME.fullmatch(stem):
        bad = "".join(sorted({c for c in stem if not re.fullmatch(r"[A-Za-z0-9_.-]", c)}))
        if bad:
            raise CheckpointError(f"the name may only use letters, digits, - _ and . (not {bad!r})")
        raise CheckpointError("the name must start with a letter, digit or _")
    return stem


def new_user_checkpoint_path(name: str) -> Path:
    """Where a checkpoint the user names ``name`` is saved: a safe file name, not a shipped
    checkpoint's name, not an existing file (CheckpointError with the reason otherwise)."""
    stem = safe_name(name)
    if stem in {info.name for info in list_checkpoints() if info.shipped}:
        raise CheckpointError(f"{stem!r} is the name of a shipped checkpoint: choose another")
    path = USER_DIR / f"{stem}.pt"
    if path.exists():
        raise CheckpointError(f"a checkpoint named {stem!r} exists already: choose another name")
    return path
