"""Students' checkpoints are theirs: who sees, opens, shares and deletes a saved run, and the bounds.

The library's rules first (``sae.io.student_checkpoints``), then two students side by side under
AppTest: each AppTest is a session of its own, with its own owner id (no cookie reaches AppTest,
so each gets a fresh one, as a new browser would).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from explorer import links, owner
from sae.io import checkpoints, student_checkpoints
from sae.io.checkpoints import CheckpointError, save_checkpoint
from sae.model import SAEConfig, SpikingAutoencoder

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
ALICE, BOB = "a" * 32, "b" * 32


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoints, "USER_DIR", tmp_path)
    return tmp_path


def model(seed: int = 0) -> SpikingAutoencoder:
    torch.manual_seed(seed)
    return SpikingAutoencoder(SAEConfig(latent_dim=8))


def save_as(owner_id: str, name: str, per_owner: int = 5, total: int = 200) -> Path:
    return save_checkpoint(student_checkpoints.new_path(name, owner_id, per_owner=per_owner, total=total), model())


# --------------------------------------------------------------------------- the rules


def test_a_saved_run_is_its_owners_until_shared(user_dir):
    path = save_as(ALICE, "rude_word_for_teacher")
    assert path.parent == user_dir / "owners" / ALICE
    assert [s.name for s in student_checkpoints.visible_to(ALICE)] == ["rude_word_for_teacher"]
    assert student_checkpoints.visible_to(BOB) == []
    assert "rude_word_for_teacher" not in [info.name for info in checkpoints.list_checkpoints()]  # not the class's list
    student_checkpoints.set_shared(path, ALICE, True)
    assert [(s.name, s.owner, s.shared) for s in student_checkpoints.visible_to(BOB)] == [("rude_word_for_teacher", ALICE, True)]
    student_checkpoints.set_shared(path, ALICE, True)  # twice is once
    student_checkpoints.set_shared(path, ALICE, False)
    assert student_checkpoints.visible_to(BOB) == []


def test_only_the_owner_shares_or_deletes_and_the_teacher_removes_any(user_dir):
    path = save_as(ALICE, "mine")
    for change in (lambda: student_checkpoints.set_shared(path, BOB, True), lambda: student_checkpoints.delete(path, BOB)):
        with pytest.raises(CheckpointError, match="only its owner"):
            change()
    with pytest.raises(CheckpointError):
        student_checkpoints.delete(path, "../" + ALICE)  # not an owner id at all
    assert path.exists()
    student_checkpoints.set_shared(path, ALICE, True)
    student_checkpoints.remove_shared(path)
    assert not path.exists() and not Path(f"{path}.shared").exists()
    with pytest.raises(CheckpointError, match="not a student's checkpoint"):
        student_checkpoints.remove_shared(checkpoints.default_checkpoint_path())
    other = save_as(ALICE, "other")
    student_checkpoints.delete(other, ALICE)
    assert student_checkpoints.saved() == []


def test_each_student_and_the_class_have_a_bound_refused_in_one_line(user_dir):
    for i in range(2):
        save_as(ALICE, f"run{i}", per_owner=2)
    with pytest.raises(CheckpointError, match=r"you already keep 2 checkpoints, the most one student may keep \(2\)"):
        save_as(ALICE, "run2", per_owner=2)
    save_as(BOB, "bobs", per_owner=2, total=3)
    with pytest.raises(CheckpointError, match=r"the class's folder already holds 3 saved checkpoints, the most it may hold \(3\)"):
        save_as("c" * 32, "third", total=3)
    with pytest.raises(CheckpointError, match="exists already"):
        save_as(BOB, "bobs")
    with pytest.raises(CheckpointError, match="shipped checkpoint"):
        save_as(BOB, checkpoints.default_checkpoint_path().stem)
    assert len(student_checkpoints.saved()) == 3


def test_owner_ids_are_random_and_only_their_shape_is_accepted():
    ids = {student_checkpoints.new_owner() for _ in range(50)}
    assert len(ids) == 50 and all(student_checkpoints.is_owner(i) for i in ids)
    for bad in ("", "A" * 32, "a" * 31, "../" + "a" * 29, None, 7):
        assert not student_checkpoints.is_owner(bad)


def test_the_cookie_keeps_the_owner_across_sessions(monkeypatch):
    monkeypatch.setattr(owner, "_cookie", lambda: ALICE)
    at = AppTest.from_string("from explorer import owner\nowner.keep_in_browser()\nimport streamlit as st\nst.text(owner.owner())").run()
    assert at.text[0].value == ALICE and not at.get("html")  # the browser sent it: nothing to write
    monkeypatch.setattr(owner, "_cookie", lambda: "forged<script>")
    at = AppTest.from_string("from explorer import owner\nowner.keep_in_browser()\nimport streamlit as st\nst.text(owner.owner())").run()
    fresh = at.text[0].value
    assert student_checkpoints.is_owner(fresh) and fresh != ALICE
    [script] = at.get("html")
    assert f"sae_owner={fresh};" in script.proto.body and "SameSite=Strict" in script.proto.body


# --------------------------------------------------------------------------- two students, two sessions


def student(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params.update(query or {})
    at.switch_page("pages/views/explore.py").run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_another_student_neither_lists_nor_opens_my_checkpoint_until_i_share_it_and_i_can_delete_it(user_dir):
    alice = student()
    path = save_as(alice.session_state["_owner"], "rude_word_for_teacher")
    alice.run()
    assert "rude_word_for_teacher" in alice.selectbox(key="sb_checkpoint").options
    alice.selectbox(key="sb_checkpoint").set_value("rude_word_for_teacher").run()
    assert alice.session_state["settings"].checkpoint.path == path
    assert alice.checkbox(key="sb_share").value is False

    bob = student({"ckpt": "rude_word_for_teacher"})
    assert not [o for o in bob.selectbox(key="sb_checkpoint").options if o.startswith("rude_word")]
    assert bob.session_state["settings"].checkpoint.path != path
    lines = [w.value for w in bob.warning if w.icon == links.ICON]
    used = bob.session_state["settings"].checkpoint_name
    assert lines == [links.plain(f"checkpoint 'rude_word_for_teacher' from the link is not offered here; using '{used}'")]
    assert not bob.get("checkbox")  # nothing of hers to share or delete

    alice.checkbox(key="sb_share").check().run()
    assert Path(f"{path}.shared").exists()
    bob.run()
    assert "rude_word_for_teacher (shared)" in bob.selectbox(key="sb_checkpoint").options
    bob.selectbox(key="sb_checkpoint").set_value("rude_word_for_teacher (shared)").run()
    assert not bob.exception and bob.session_state["settings"].checkpoint.path == path
    assert not bob.get("checkbox")  # shared with him, still hers

    alice.button(key="sb_delete").click().run()
    assert not alice.exception and not path.exists()
    assert "rude_word_for_teacher" not in alice.selectbox(key="sb_checkpoint").options
    bob.run()
    assert not bob.exception and not [o for o in bob.selectbox(key="sb_checkpoint").options if o.startswith("rude_word")]
