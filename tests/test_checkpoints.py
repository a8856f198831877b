"""Checkpoints: round trip, the tutorial's state_dicts, bad and hostile files, atomic saves."""

import collections
import io
import os
import pickle
import struct
import threading
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from benchmarks.tutorial_sae import build_tutorial_sae
from sae import limits
from sae.io import checkpoints
from sae.io.checkpoints import (
    Checkpoint,
    CheckpointError,
    CheckpointInfo,
    default_checkpoint_path,
    list_checkpoints,
    load_checkpoint,
    safe_name,
    save_checkpoint,
)
from sae.model import SAEConfig, SpikingAutoencoder


def make_model(seed=0, **config):
    torch.manual_seed(seed)
    return SpikingAutoencoder(SAEConfig(**config))


def to_bytes(obj, **save_kwargs) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer, **save_kwargs)
    return buffer.getvalue()


def payload(model, **changes) -> dict:
    """A checkpoint dict as save_checkpoint writes it, with ``changes`` applied."""
    obj = {
        "format": "sae-checkpoint",
        "version": 1,
        "config": model.config.to_dict(),
        "state_dict": dict(model.state_dict()),
        "metrics": {},
        "history": {},
        "provenance": {},
    }
    obj.update(changes)
    return obj


def assert_one_line_error(source, *fragments) -> CheckpointError:
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(source)
    message = str(caught.value)
    assert "\n" not in message and message.strip() == message and message
    for fragment in fragments:
        assert fragment in message, message
    return caught.value


@pytest.fixture(scope="module")
def good_bytes(tmp_path_factory):
    """A valid checkpoint's bytes, written once for the module (saving fsyncs)."""
    path = save_checkpoint(tmp_path_factory.mktemp("good") / "good.pt", make_model(), metrics={"test_mse": 0.05})
    return path.read_bytes()


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    """Shipped and user folders inside tmp_path, patched into the module."""
    shipped, user = tmp_path / "shipped", tmp_path / "user"
    shipped.mkdir()
    user.mkdir()
    monkeypatch.setattr(checkpoints, "SHIPPED_DIR", shipped)
    monkeypatch.setattr(checkpoints, "USER_DIR", user)
    return shipped, user


# --------------------------------------------------------------------------- round trip


def test_round_trip_keeps_weights_config_and_records(tmp_path):
    model = make_model(latent_dim=16, beta=0.9, thresh=0.75, num_steps=3)
    history = collections.defaultdict(list, {"loss": [0.3, 0.2], "step": (1, 2)})  # not weights_only-safe as is
    metrics = {
        "test_mse": np.float32(0.0412),
        "count": np.int64(10_000),
        "rates": {"enc1": torch.tensor(0.25)},
        "curve": torch.arange(3.0),
        "where": Path("/x/y"),
    }
    path = save_checkpoint(
        tmp_path / "sub" / "model.pt", model, metrics=metrics, history=history, provenance={"seed": 7, "command": "python -m sae train --epochs 2"}
    )

    raw = torch.load(path, weights_only=True)  # a plain dict, safe to load
    assert raw["format"] == "sae-checkpoint" and raw["version"] == 1
    ckpt = load_checkpoint(path)
    assert isinstance(ckpt, Checkpoint) and ckpt.path == path
    assert ckpt.config == model.config
    original, loaded = model.state_dict(), ckpt.model.state_dict()
    assert list(original) == list(loaded)
    assert all(torch.equal(original[k], loaded[k]) for k in original)
    assert not ckpt.model.training

    assert ckpt.history == {"loss": [0.3, 0.2], "step": [1, 2]}
    assert ckpt.metrics["test_mse"] == pytest.approx(0.0412) and type(ckpt.metrics["test_mse"]) is float
    assert ckpt.metrics["count"] == 10_000 and type(ckpt.metrics["count"]) is int
    assert ckpt.metrics["rates"] == {"enc1": 0.25}
    assert torch.equal(ckpt.metrics["curve"], torch.arange(3.0))
    assert ckpt.metrics["where"] == "/x/y"
    provenance = ckpt.provenance
    assert provenance["seed"] == 7 and provenance["command"] == "python -m sae train --epochs 2"
    assert provenance["date"].endswith("+00:00")
    assert set(provenance["packages"]) == {"torch", "snntorch", "python"}
    assert provenance["packages"]["snntorch"]

    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), ckpt.model(x))


def test_provenance_is_completed_when_not_given(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", make_model())
    provenance = load_checkpoint(path).provenance
    assert {"command", "date", "packages"} <= set(provenance) and "seed" not in provenance


def test_load_from_bytes_as_from_an_upload(good_bytes):
    ckpt = load_checkpoint(good_bytes)
    assert ckpt.path is None and ckpt.metrics == {"test_mse": 0.05}
    assert load_checkpoint(bytearray(good_bytes)).config == SAEConfig()


def test_loads_from_several_threads_at_once(good_bytes):
    """Shape checks build the model on the meta device; that must not leak into other threads."""
    results, errors = [], []

    def work():
        try:
            results.append(load_checkpoint(good_bytes).model.encoder[0].weight.device.type)
            results.append(torch.zeros(1).device.type)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and results == ["cpu"] * 8


def test_a_state_dict_from_the_tutorials_class_loads(tmp_path):
    torch.manual_seed(3)
    tutorial = build_tutorial_sae(latent_dim=16, beta=0.9, thresh=0.5)
    path = tmp_path / "tutorial.pt"
    torch.save(tutorial.state_dict(), path)

    ckpt = load_checkpoint(path)
    assert (ckpt.config.latent_dim, ckpt.config.beta, ckpt.config.thresh) == (16, 0.9, 0.5)  # not 0.899999976
    assert ckpt.config.output_thresh == 20000
    theirs, ours = tutorial.state_dict(), ckpt.model.state_dict()
    assert list(theirs) == list(ours)
    for key in theirs:  # the tutorial's output threshold is an int64 20000; ours is float
        assert torch.equal(theirs[key].to(ours[key].dtype), ours[key]), key
    assert ckpt.metrics == {} and ckpt.history == {} and ckpt.provenance == {}


# --------------------------------------------------------------------------- bad files


def rezip(data: bytes, compression=zipfile.ZIP_STORED) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info.filename))
    return out.getvalue()


def flip_a_weight_byte(data: bytes) -> bytes:
    """Change one byte inside the largest tensor's data (the zip CRC no longer matches)."""
    info = max(zipfile.ZipFile(io.BytesIO(data)).infolist(), key=lambda i: i.file_size)
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
    start = info.header_offset + 30 + name_length + extra_length  # the local header's own lengths
    damaged = bytearray(data)
    damaged[start + 1000] ^= 0xFF
    return bytes(damaged)


def with_config(parts, **changes):
    return to_bytes(payload(parts.model, config={**parts.model.config.to_dict(), **changes}))


def with_state(parts, changes: dict):
    """A bare state_dict (as the tutorial's code saves) with some tensors replaced or added."""
    return to_bytes({**parts.state, **changes})


def replace_entries(data: bytes, replacements: dict) -> bytes:
    """The same zip with entries (matched by the end of their name) replaced, or dropped for None."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            content = source.read(info.filename)
            for ending, replacement in replacements.items():
                if info.filename.endswith(ending):
                    content = replacement
            if content is not None:
                target.writestr(info.filename, content)
    return out.getvalue()


def a_zip_that_is_not_torch(parts):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("hello.txt", "hi")
    return out.getvalue()


def nan_weights(parts):
    state = {k: v.clone() for k, v in parts.state.items()}
    state["decoder.2.weight"][0, 0, 0, 0] = float("nan")
    return to_bytes(payload(parts.model, state_dict=state))


# name -> (how to make the file from `parts`, a fragment of the expected message)
BAD_FILES = {
    "truncated": (lambda p: p.good[: len(p.good) // 2], "the file is truncated or corrupt"),
    "one flipped byte": (lambda p: flip_a_weight_byte(p.good), "bad checksum in"),
    "random bytes": (lambda p: b"\x13" + np.random.default_rng(0).bytes(4096), "not a checkpoint"),
    "empty": (lambda p: b"", "the file is empty"),
    "text": (lambda p: b"just some notes\nabout a model\n", "not a checkpoint"),
    "json": (lambda p: b'{"format": "sae-checkpoint", "version": 1}', "not a checkpoint"),
    "a zip that is not torch": (a_zip_that_is_not_torch, "not a PyTorch one"),
    "a tensor's data missing": (lambda p: replace_entries(p.good, {"/data/3": None}), "the file is truncated or corrupt ("),
    "a tensor's data short": (lambda p: replace_entries(p.good, {"/data/3": b"1234"}), "the file is truncated or corrupt ("),
    "garbage instead of the pickle": (lambda p: replace_entries(p.good, {"/data.pkl": b"\x13garbage"}), "not plain data"),
    "compressed zip": (lambda p: rezip(p.good, zipfile.ZIP_DEFLATED), "compressed entries"),
    "legacy torch format": (lambda p: to_bytes(p.state, _use_new_zipfile_serialization=False), "old-format"),
    "a list": (lambda p: to_bytes([1, 2, 3]), "it holds a list"),
    "some other dict": (lambda p: to_bytes({"model": p.state, "epoch": 3}), "neither a state_dict"),
    "wrong format tag": (lambda p: to_bytes(payload(p.model, format="other-thing")), "'other-thing'"),
    "newer version": (lambda p: to_bytes(payload(p.model, version=2)), "version 2 is not supported"),
    "no config": (lambda p: to_bytes(payload(p.model, config=None)), "no config"),
    "unknown config key": (lambda p: with_config(p, colour=1), "bad config: unknown config keys"),
    "thresh out of range": (lambda p: with_config(p, thresh=500.0), "bad config: thresh must be a number in 0.05–5, got 500.0"),
    "latent_dim not an int": (lambda p: with_config(p, latent_dim=32.0), "latent_dim must be an integer"),
    "wrong shapes": (
        lambda p: to_bytes(payload(p.model, state_dict=dict(p.small.state_dict()))),
        "wrong shape for encoder.10.weight: (16, 2048) but latent_dim 32 needs (32, 2048)",
    ),
    "huge latent_dim in config": (lambda p: with_config(p, latent_dim=4096), "latent_dim 4096 needs (4096, 2048)"),
    "missing keys": (
        lambda p: to_bytes({k: v for k, v in p.state.items() if "decoder.3" not in k}),
        "5 missing keys (decoder.3.weight, decoder.3.bias, decoder.3.running_mean, ...)",
    ),
    "extra keys": (lambda p: with_state(p, {"head.weight": torch.zeros(2)}), "1 unexpected key (head.weight)"),
    "not tensors": (lambda p: to_bytes(payload(p.model, state_dict=dict(p.state, **{"encoder.0.bias": [0.0] * 32}))), "not a dict of tensors"),
    "NaN weights": (nan_weights, "decoder.2.weight contains NaN"),
    "float step counter": (lambda p: with_state(p, {"encoder.1.num_batches_tracked": torch.tensor(1.5)}), "should hold integers"),
    "config disagrees with buffers": (lambda p: with_config(p, thresh=0.5), "encoder.2.threshold is 1 but the config says thresh 0.5"),
    "one layer's beta differs": (
        lambda p: with_state(p, {"decoder.4.beta": torch.tensor(0.25)}),
        "decoder.4.beta is 0.25 but the config says beta 0.5",
    ),
    "reset by zeroing": (lambda p: with_state(p, {"encoder.5.reset_mechanism_val": torch.tensor(1)}), "encoder.5 resets by zeroing"),
    "metrics not a dict": (lambda p: to_bytes(payload(p.model, metrics=[1, 2])), "metrics is a list"),
}


@pytest.fixture(scope="module")
def parts(good_bytes):
    model = make_model()
    return SimpleNamespace(good=good_bytes, model=model, state=dict(model.state_dict()), small=make_model(latent_dim=16))


@pytest.mark.parametrize("name", BAD_FILES)
def test_each_bad_file_gives_a_one_line_error(name, parts, tmp_path):
    make, fragment = BAD_FILES[name]
    data = make(parts)
    path = tmp_path / "bad.pt"
    path.write_bytes(data)
    assert_one_line_error(path, fragment)
    assert_one_line_error(data, fragment)


def test_too_big_is_refused_before_reading(good_bytes, tmp_path, monkeypatch):
    path = tmp_path / "big.pt"
    path.write_bytes(good_bytes)
    monkeypatch.setattr(checkpoints, "MAX_CHECKPOINT_BYTES", 1000)
    monkeypatch.setattr(checkpoints.torch, "load", lambda *a, **k: pytest.fail("torch.load was reached"))
    assert_one_line_error(path, "larger than 1000 bytes")
    assert_one_line_error(good_bytes, "larger than 1000 bytes")


def test_the_real_cap_is_20_mb():
    assert checkpoints.MAX_CHECKPOINT_BYTES == 20 * 1024 * 1024
    assert_one_line_error(b"\0" * (checkpoints.MAX_CHECKPOINT_BYTES + 1), "larger than 20 MB")


def test_missing_path_and_folder(tmp_path):
    assert_one_line_error(tmp_path / "nope.pt", "cannot read")
    assert_one_line_error(tmp_path, "is a folder")


# --------------------------------------------------------------------------- hostile files


def _write_marker(path):
    """What a hostile pickle would run: harmless here, but proof that code ran."""
    Path(path).write_text("pwned")
    return {}


class Hostile:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (_write_marker, (self.marker,))


def unsafe_torch_load(data):
    return torch.load(io.BytesIO(data), weights_only=False)


# name -> (how to make the file from a Hostile object and a model, how it would be loaded unsafely)
HOSTILE_FILES = {
    "zip, bare": (lambda h, m: to_bytes({"x": h}), unsafe_torch_load),
    "zip, inside a valid checkpoint": (lambda h, m: to_bytes(payload(m, metrics={"x": h})), unsafe_torch_load),
    "zip, in place of a tensor": (lambda h, m: to_bytes(dict(m.state_dict(), **{"encoder.0.bias": h})), unsafe_torch_load),
    "legacy torch file": (lambda h, m: to_bytes({"x": h}, _use_new_zipfile_serialization=False), unsafe_torch_load),
    "raw pickle": (lambda h, m: pickle.dumps(h), pickle.loads),
    "raw pickle, protocol 0": (lambda h, m: pickle.dumps(h, protocol=0), pickle.loads),
}
ENVIRONMENTS = {
    "plain": {},
    "force-no-weights-only": {"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"},
    "force-weights-only": {"TORCH_FORCE_WEIGHTS_ONLY_LOAD": "1"},
}


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("name", HOSTILE_FILES)
def test_a_hostile_pickle_never_runs(name, env, tmp_path, monkeypatch):
    for key, value in ENVIRONMENTS[env].items():
        monkeypatch.setenv(key, value)
    marker = tmp_path / "MARKER"
    make, unsafe_load = HOSTILE_FILES[name]
    data = make(Hostile(marker), make_model())
    path = tmp_path / "hostile.pt"
    path.write_bytes(data)

    error = assert_one_line_error(path)
    assert_one_line_error(data)
    assert not marker.exists()
    if name.startswith("zip"):
        assert str(error) == f"not a safe checkpoint: it tries to load {__name__}._write_marker; refused"

    monkeypatch.delenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", raising=False)
    unsafe_load(data)  # the control: loaded without weights_only, the payload does run
    assert marker.exists()


def test_torch_honours_the_environment_variable_that_we_override(tmp_path, monkeypatch):
    """TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD flips torch.load's default (torch 2.6+), so
    load_checkpoint must pass weights_only=True explicitly; this proves the flip is real."""
    marker = tmp_path / "MARKER"
    path = tmp_path / "hostile.pt"
    path.write_bytes(to_bytes({"x": Hostile(marker)}))
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.warns(UserWarning, match="TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"):
        torch.load(path)
    assert marker.exists()
    marker.unlink()
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("env", ["force-no-weights-only", "force-weights-only"])
def test_a_good_file_still_loads_under_either_variable(env, good_bytes, monkeypatch):
    for key, value in ENVIRONMENTS[env].items():
        monkeypatch.setenv(key, value)
    assert load_checkpoint(good_bytes).config == SAEConfig()


# --------------------------------------------------------------------------- saving


@pytest.mark.parametrize("crash", [OSError("No space left on device"), KeyboardInterrupt()])
def test_a_crash_while_saving_leaves_the_old_file_intact(crash, tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "model.pt", make_model(), metrics={"run": 1})
    before = path.read_bytes()

    def crashing_save(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"PK\x03\x04 half a checkpoint")  # the temporary file beside the real one
        raise crash

    monkeypatch.setattr(checkpoints.torch, "save", crashing_save)
    with pytest.raises(type(crash)):
        save_checkpoint(path, make_model(seed=1), metrics={"run": 2}, overwrite=True)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_checkpoint(path).metrics == {"run": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]  # no temporary file left


@pytest.mark.parametrize("overwrite, system_call", [(False, "link"), (True, "replace")])
def test_save_is_a_rename_of_a_complete_file(overwrite, system_call, tmp_path, monkeypatch):
    """A new name is taken by a hard link (refused when it exists), an overwrite is a rename."""
    calls = []
    real = getattr(os, system_call)

    def spying(source, target):
        calls.append((Path(source).parent, Path(source).name, Path(target)))
        assert load_checkpoint(Path(source)).config.latent_dim == 8  # complete before it gets the name
        real(source, target)

    monkeypatch.setattr(checkpoints.os, system_call, spying)
    path = save_checkpoint(tmp_path / "m.pt", make_model(latent_dim=8), overwrite=overwrite)
    [(folder, temp_name, target)] = calls
    assert folder == tmp_path and target == path and not temp_name.endswith(".pt")
    assert (path.stat().st_mode & 0o777) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]  # the temporary file is gone


def test_two_saves_of_one_name_at_the_same_moment_one_wins_and_the_other_gets_one_line(tmp_path, monkeypatch):
    """Both saves have passed the name check and written their file before either takes the name."""
    both_written = threading.Barrier(2, timeout=60)
    real_save = checkpoints.torch.save

    def save_then_wait(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        both_written.wait()

    monkeypatch.setattr(checkpoints.torch, "save", save_then_wait)
    outcome = {}

    def save(seed):
        try:
            save_checkpoint(tmp_path / "same.pt", make_model(seed=seed), metrics={"seed": seed})
            outcome[seed] = "saved"
        except CheckpointError as error:
            outcome[seed] = str(error)

    threads = [threading.Thread(target=save, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    winners = [seed for seed, said in outcome.items() if said == "saved"]
    assert len(outcome) == 2 and len(winners) == 1, outcome
    (loser,) = set(outcome) - set(winners)
    assert outcome[loser] == "a checkpoint named 'same.pt' already exists: choose another name"
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "same.pt").metrics == {"seed": winners[0]}  # the file is the winner's
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same.pt"]  # the loser's temporary file is gone


def test_without_hard_links_the_name_is_still_taken_once(tmp_path, monkeypatch):
    """Some file systems have no hard links: the name is reserved with O_EXCL instead."""

    def no_links(source, target):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(checkpoints.os, "link", no_links)
    path = save_checkpoint(tmp_path / "m.pt", make_model(), metrics={"run": 1})
    assert load_checkpoint(path).metrics == {"run": 1}
    with pytest.raises(CheckpointError, match="already exists"):
        save_checkpoint(path, make_model(), metrics={"run": 2})
    assert load_checkpoint(path).metrics == {"run": 1} and sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


def test_overwrite_is_refused_unless_asked(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", make_model(), metrics={"run": 1})
    with pytest.raises(CheckpointError, match="already exists"):
        save_checkpoint(path, make_model(), metrics={"run": 2})
    assert load_checkpoint(path).metrics == {"run": 1}
    save_checkpoint(path, make_model(), metrics={"run": 2}, overwrite=True)
    assert load_checkpoint(path).metrics == {"run": 2}


def test_shipped_files_are_never_overwritten(dirs):
    shipped, user = dirs
    target = save_checkpoint(shipped / "sae_mnist.pt", make_model())  # a new file there is fine (the CLI)
    before = target.read_bytes()
    (user / "link.pt").symlink_to(target)
    for path in (target, user / ".." / "shipped" / "sae_mnist.pt", Path(os.path.relpath(target)), user / "link.pt"):
        with pytest.raises(CheckpointError, match="shipped checkpoint") as caught:
            save_checkpoint(path, make_model(seed=1), overwrite=True)
        assert "\n" not in str(caught.value)
    assert target.read_bytes() == before
    save_checkpoint(user / "sae_mnist.pt", make_model(seed=1))  # the same name elsewhere is fine


def test_a_model_that_could_not_be_loaded_is_not_saved(tmp_path):
    model = make_model()
    with torch.no_grad():
        model.encoder[0].weight[0, 0, 0, 0] = float("inf")
    with pytest.raises(CheckpointError, match="refusing to save: encoder.0.weight contains NaN or infinite"):
        save_checkpoint(tmp_path / "m.pt", model)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- listing and names


def test_list_checkpoints_shipped_first_then_by_name(dirs):
    shipped, user = dirs
    for path in (shipped / "b.pt", shipped / "a.pt", user / "z.pt", user / "a.pt", user / "m.pt"):
        path.write_bytes(b"not even loaded")
    (shipped / "notes.md").write_text("x")
    (shipped / ".hidden.pt").write_bytes(b"x")
    (user / ".m.pt.abc123.tmp").write_bytes(b"x")  # a save in progress
    (user / "folder.pt").mkdir()
    infos = list_checkpoints()
    assert [(i.name, i.shipped) for i in infos] == [("a", True), ("b", True), ("a", False), ("m", False), ("z", False)]
    assert infos[0] == CheckpointInfo("a", shipped / "a.pt", True)
    assert list_checkpoints(dirs=[user / "missing", shipped]) == infos[:2]
    assert default_checkpoint_path() == shipped / "sae_mnist.pt"


def test_the_listing_follows_saves_and_removals_without_rescanning_in_between(dirs, monkeypatch):
    shipped, user = dirs
    (shipped / "a.pt").write_bytes(b"x")
    an_hour_ago = time.time_ns() - 3600 * 10**9
    for folder in dirs:  # a folder changed in the last second is always read again (coarse file times)
        os.utime(folder, ns=(an_hour_ago, an_hour_ago))
    assert [i.name for i in list_checkpoints()] == ["a"]
    scans = []
    monkeypatch.setattr(Path, "glob", lambda self, pattern, _glob=Path.glob: scans.append(self) or _glob(self, pattern))
    assert [i.name for i in list_checkpoints()] == ["a"] and scans == []  # nothing changed: no folder read
    save_checkpoint(user / "mine.pt", make_model())  # an atomic save: a rename into the folder
    assert [i.name for i in list_checkpoints()] == ["a", "mine"] and scans
    (user / "mine.pt").unlink()
    assert [i.name for i in list_checkpoints()] == ["a"]
    listed = list_checkpoints()
    listed.clear()  # a caller's list is its own
    assert [i.name for i in list_checkpoints()] == ["a"]


def test_default_folders():
    assert checkpoints.SHIPPED_DIR == Path(__file__).resolve().parent.parent / "checkpoints"
    assert default_checkpoint_path().name == "sae_mnist.pt"


@pytest.mark.parametrize(
    "typed, stem", [("my-model_2.1", "my-model_2.1"), ("  my model  ", "my_model"), ("run.pt", "run"), ("_x", "_x"), ("a" * 64, "a" * 64)]
)
def test_safe_name_accepts(typed, stem):
    assert safe_name(typed) == stem


@pytest.mark.parametrize(
    "typed", ["", "   ", ".pt", "../evil", "a/b", "a\\b", ".hidden", "..", "-rf", "a" * 65, "naïve", "semi;colon", "nul\0byte", "~home"]
)
def test_safe_name_refuses(typed):
    with pytest.raises(CheckpointError) as caught:
        safe_name(typed)
    assert "\n" not in str(caught.value)


# --------------------------------------------------------------------------- checkpoints of another shape


@pytest.mark.parametrize("input_size, latent_dim", [(8, 32), (256, 8), (64, 32)])
def test_a_checkpoint_made_for_other_images_is_refused_at_load_in_one_line(input_size, latent_dim, tmp_path):
    model = make_model(input_size=input_size, latent_dim=latent_dim)
    ours = {"format": checkpoints.FORMAT, "version": checkpoints.VERSION, "config": model.config.to_dict(), "state_dict": model.state_dict()}
    line = f"made for {input_size}x{input_size} images; this app feeds the network 32x32 digits"
    with pytest.raises(CheckpointError, match=f"^{line}$"):
        load_checkpoint(to_bytes(ours))
    with pytest.raises(CheckpointError, match=f"^refusing to save: {line}$"):
        save_checkpoint(tmp_path / "other.pt", model)  # what could not be loaded back is not written
    assert not (tmp_path / "other.pt").exists()


@pytest.mark.parametrize("latent_dim", limits.LATENT_DIM_CHOICES)
def test_every_latent_size_the_train_page_makes_loads(latent_dim, tmp_path):
    path = save_checkpoint(tmp_path / f"l{latent_dim}.pt", make_model(latent_dim=latent_dim))
    assert load_checkpoint(path).config.latent_dim == latent_dim
