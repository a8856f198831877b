"""The network as files a browser runs: one time step of the encoder and one of the decoder, in ONNX.

The page loops over time steps itself, so any ``num_steps`` is a loop in JavaScript and
every step can be drawn; the decoder step alone serves the Latent lab.  Both graphs are
exported from the torch model (``SpikingAutoencoder.encoder_step`` / ``decoder_step``,
the very methods its forward runs), never written a second time::

    encoder step   image [B,1,H,W], mem_enc1 .. mem_latent, thresh, beta
                -> spikes_<layer>, new_mem_<layer>   for enc1, enc2, enc3, latent
    decoder step   latent_spikes [B,D], mem_linear .. mem_output, thresh, beta
                -> spikes_<layer>, new_mem_<layer>   for linear, dec0, dec1, dec2, output

Membranes start at zero (the model's own first step); ``thresh`` and ``beta`` are
float32 scalars; B is free.  BatchNorm runs in eval mode (onnxruntime folds it into
the convolution before it when it loads the file).  conv1 + BN is recomputed every step (it is about 1 %
of a step's work, and one graph is simpler for the page than two).

Files are made on demand and kept in a folder, named by the weights' fingerprint
(``sae.io.fingerprints``) and this module's graph version, so a name always means the
same bytes and a browser may cache it for good.  Writes are atomic; at most
``KEPT_MODELS`` models stay in the folder (the least recently used go first).
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import subprocess
import sys
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from sae.io.atomic import atomic_path
from sae.io.checkpoints import load_checkpoint, save_checkpoint
from sae.io.fingerprints import model_fingerprint
from sae.model import SpikingAutoencoder

ENCODER_LAYERS = ("enc1", "enc2", "enc3", "latent")
DECODER_LAYERS = ("linear", "dec0", "dec1", "dec2", "output")
SETTINGS_INPUTS = ("thresh", "beta")
# Bump when the graphs' inputs or outputs change: files of another version are never reused.
GRAPH_VERSION = 1
KEPT_MODELS = 64  # fingerprints kept in the folder; each is two files, about 1.5 MB together
EXPORT_TIMEOUT_S = 300
SUFFIXES = ("encoder.onnx", "decoder.onnx")

_export_lock = threading.Lock()


def input_names(layers: tuple[str, ...], first: str) -> list[str]:
    return [first] + [f"mem_{name}" for name in layers] + list(SETTINGS_INPUTS)


def output_names(layers: tuple[str, ...]) -> list[str]:
    return [f"{kind}_{name}" for name in layers for kind in ("spikes", "new_mem")]


class EncoderStep(nn.Module):
    """One encoder time step as a function of its inputs (what ``torch.onnx`` exports)."""

    def __init__(self, model: SpikingAutoencoder):
        super().__init__()
        self.model = model

    def forward(self, image, mem_enc1, mem_enc2, mem_enc3, mem_latent, thresh, beta):
        return _step(self.model.encoder_step, self.model.first_layer(image), ENCODER_LAYERS, (mem_enc1, mem_enc2, mem_enc3, mem_latent), thresh, beta)


class DecoderStep(nn.Module):
    """One decoder time step as a function of its inputs (what ``torch.onnx`` exports)."""

    def __init__(self, model: SpikingAutoencoder):
        super().__init__()
        self.model = model

    def forward(self, latent_spikes, mem_linear, mem_dec0, mem_dec1, mem_dec2, mem_output, thresh, beta):
        return _step(self.model.decoder_step, latent_spikes, DECODER_LAYERS, (mem_linear, mem_dec0, mem_dec1, mem_dec2, mem_output), thresh, beta)


def _step(step, h, layers, membranes, thresh, beta) -> tuple:
    mem = dict(zip(layers, membranes))
    record = {"spikes": {}, "mem": {}}
    step(h, mem, beta=beta, thresh=thresh, record=record)
    return tuple(t for name in layers for t in (record["spikes"][name][0], mem[name]))


def layer_shapes(model: SpikingAutoencoder) -> dict[str, tuple[int, ...]]:
    """Every layer's membrane shape for one image (no batch axis), from one forward at zero input."""
    size = model.config.input_size
    with torch.no_grad():
        _, trace = model(torch.zeros(1, 1, size, size, device=_device(model)), settings=model.config.neuron_settings(num_steps=1), trace=True)
    return {name: tuple(trace.mem[name].shape[2:]) for name in trace.mem}


def example_inputs(model: SpikingAutoencoder, batch: int = 2) -> tuple[tuple, tuple]:
    """Zero inputs of the right shapes for the encoder and the decoder step."""
    shapes, device = layer_shapes(model), _device(model)
    size, latent_dim = model.config.input_size, model.config.latent_dim

    def zeros(*shape):
        return torch.zeros(batch, *shape, device=device)

    settings = (torch.tensor(1.0, device=device), torch.tensor(0.5, device=device))
    encoder = (zeros(1, size, size), *(zeros(*shapes[n]) for n in ENCODER_LAYERS), *settings)
    decoder = (zeros(latent_dim), *(zeros(*shapes[n]) for n in DECODER_LAYERS), *settings)
    return encoder, decoder


def export_onnx(model: SpikingAutoencoder) -> tuple[bytes, bytes]:
    """The encoder-step and decoder-step graphs of ``model`` (eval mode, on the CPU), as ONNX bytes.

    The model is copied, so the caller's (shared, maybe on a GPU) instance is left alone."""
    model = copy.deepcopy(model).cpu().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    encoder_args, decoder_args = example_inputs(model)
    files = []
    for wrapper, args, layers, first in (
        (EncoderStep(model), encoder_args, ENCODER_LAYERS, "image"),
        (DecoderStep(model), decoder_args, DECODER_LAYERS, "latent_spikes"),
    ):
        names = input_names(layers, first)
        batch = torch.export.Dim("batch", min=1, max=4096)
        dynamic = {name: ({0: batch} if name not in SETTINGS_INPUTS else None) for name in names}
        files.append(_export(wrapper.eval(), args, names, output_names(layers), dynamic))
    return files[0], files[1]


def _export(module, args, names, outputs, dynamic) -> bytes:
    """``torch.onnx.export`` (the dynamo exporter) to bytes, one self-contained file, quietly
    (it prints its progress to stdout and warns about its own internals)."""
    quiet = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "torch.export")]
    levels = [log.level for log in quiet]
    try:
        for log in quiet:
            log.setLevel(logging.ERROR)
        with warnings.catch_warnings(), torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module,
                args,
                dynamo=True,
                input_names=names,
                output_names=outputs,
                dynamic_shapes=dynamic,
                external_data=False,
                verbose=False,
                optimize=False,  # its optimizer (onnxscript 0.7.2) dropped the Clip bounds here: an invalid graph
            )
        return program.model_proto.SerializeToString()  # weights inside: one request per graph
    finally:
        for log, level in zip(quiet, levels):
            log.setLevel(level)


class ExportError(RuntimeError):
    """The graphs could not be exported; the message is one line."""


def export_onnx_in_child(model: SpikingAutoencoder) -> tuple[bytes, bytes]:
    """:func:`export_onnx` in a fresh interpreter (``python -m sae.io.browser_model``).

    The exporter is seconds of Python work: in a Streamlit server it would hold the GIL that
    every other session's rerun waits on.  The child gets the weights as a checkpoint file."""
    root = str(Path(__file__).resolve().parents[2])  # where the sae package is, for the child's import
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    with tempfile.TemporaryDirectory(prefix="sae-export-") as folder:
        source = save_checkpoint(Path(folder) / "model.pt", model)
        try:
            done = subprocess.run(
                [sys.executable, "-m", "sae.io.browser_model", str(source), folder],
                env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=EXPORT_TIMEOUT_S,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise ExportError(f"the export took longer than {EXPORT_TIMEOUT_S} s") from None
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            raise ExportError(lines[-1] if lines else f"the export exited with {done.returncode}")
        return tuple((Path(folder) / suffix).read_bytes() for suffix in SUFFIXES)


def _main(argv: list[str]) -> int:
    """``python -m sae.io.browser_model CHECKPOINT FOLDER``: write FOLDER/encoder.onnx and decoder.onnx."""
    source, folder = argv
    for suffix, data in zip(SUFFIXES, export_onnx(load_checkpoint(Path(source)).model)):
        (Path(folder) / suffix).write_bytes(data)
    return 0


@dataclass(frozen=True)
class BrowserModel:
    """The two files of one model, by name inside their folder."""

    fingerprint: str
    encoder: str
    decoder: str


def file_names(fingerprint: str) -> tuple[str, str]:
    return tuple(f"sae-step{GRAPH_VERSION}-{fingerprint}-{suffix}" for suffix in SUFFIXES)


def browser_model(model: SpikingAutoencoder, folder: Path, export=export_onnx, fingerprint: str | None = None) -> BrowserModel:
    """The model's two graph files in ``folder``, exported (by ``export``) the first time they are asked for.
    ``fingerprint``: the weights' (sae.io.fingerprints), when the caller holds it already.

    Safe to call from many threads (one export at a time) and processes (atomic renames:
    a reader sees a whole file or none, and two processes exporting the same weights write
    the same content under the same name)."""
    folder = Path(folder)
    fingerprint = fingerprint or model_fingerprint(model)
    names = file_names(fingerprint)
    paths = [folder / name for name in names]
    if all(p.exists() for p in paths):
        for path in paths:
            _touch(path)  # recently used: the last to be forgotten
        return BrowserModel(fingerprint, *names)
    with _export_lock:  # one export at a time (seconds of CPU each); pages whose files exist never wait here
        if not all(p.exists() for p in paths):
            for path, data in zip(paths, export(model)):
                with atomic_path(path) as tmp:
                    tmp.write_bytes(data)
            _forget_old(folder, keep=KEPT_MODELS)
    return BrowserModel(fingerprint, *names)


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:
        pass  # another process removed it: the next call exports it again


def _forget_old(folder: Path, keep: int) -> None:
    """Keep the ``keep`` most recently used models' files; remove the others."""
    groups: dict[str, float] = {}
    for path in folder.glob("sae-step*.onnx"):
        key = path.name.rsplit("-", 1)[0]
        try:
            groups[key] = max(groups.get(key, 0.0), path.stat().st_mtime)
        except OSError:
            continue
    for key in sorted(groups, key=groups.get, reverse=True)[keep:]:
        for suffix in SUFFIXES:
            (folder / f"{key}-{suffix}").unlink(missing_ok=True)


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


if __name__ == "__main__":
    # Through the module's own name, not __main__: the graphs record their classes' module, and a
    # name must mean the same bytes whichever process exported it.
    from sae.io.browser_model import _main as main

    raise SystemExit(main(sys.argv[1:]))
