"""docs/architecture.md names every module under sae/, explorer/, pages/ and teaching/, and no module that is gone.

The doc's module paths are read as written (`sae/analysis/sweep.py`); a package written with
its slash (`sae/runs/`) covers its ``__init__.py``.  Globs and placeholders (`pages/views/*.py`,
`sae/plots/<topic>.py`) name only their folder, so they cover no module.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
PACKAGES = ("sae", "explorer", "pages", "teaching")

# A path inside one of the packages: folders, then a module or nothing (a package, with its slash).
# Not part of a longer path (``tests/...``, ``benchmarks/tutorial_sae.py``) nor of a dotted name.
PATH = re.compile(r"(?<![\w./-])((?:" + "|".join(PACKAGES) + r")/(?:[A-Za-z_]\w*/)*(?:[A-Za-z_]\w*\.py)?)(?![\w/])")


def named_in(text: str) -> tuple[set[str], set[str]]:
    """The module files and the package folders ``text`` names, as repository-relative paths."""
    found = set(PATH.findall(text))
    return {p for p in found if p.endswith(".py")}, {p for p in found if p.endswith("/")}


def modules_on_disk(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for package in PACKAGES for p in (root / package).rglob("*.py") if "__pycache__" not in p.parts}


def differences(text: str, root: Path) -> tuple[list[str], list[str]]:
    """(modules on disk the text does not name, paths the text names that do not exist)."""
    files, folders = named_in(text)
    covered = files | {folder + "__init__.py" for folder in folders}
    missing = sorted(modules_on_disk(root) - covered)
    gone = sorted(p for p in files if not (root / p).is_file()) + sorted(p for p in folders if not (root / p).is_dir())
    return missing, gone


def test_the_architecture_doc_names_every_module():
    missing, _ = differences(DOC.read_text(), ROOT)
    assert not missing, (
        "docs/architecture.md does not name these modules; add a row for each to its table "
        "'Every module and its one job' (an __init__.py may be covered by its package, e.g. `sae/runs/`):\n  " + "\n  ".join(missing)
    )


def test_the_architecture_doc_names_no_module_that_is_gone():
    _, gone = differences(DOC.read_text(), ROOT)
    assert not gone, "docs/architecture.md names paths that do not exist; remove them or write their new names:\n  " + "\n  ".join(gone)


def test_the_check_finds_a_module_left_out_and_one_that_is_gone(tmp_path):
    for path in (
        "sae/__init__.py",
        "sae/model.py",
        "sae/runs/__init__.py",
        "sae/runs/jobs.py",
        "explorer/cached.py",
        "pages/views/home.py",
        "sae/plots/__init__.py",
        "teaching/__init__.py",
        "teaching/qr.py",
    ):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("")
    (tmp_path / "pages" / "__pycache__").mkdir()
    (tmp_path / "pages" / "__pycache__" / "junk.py").write_text("")
    text = (
        "`sae/` the library; `sae/model.py` and `sae/runs/` (its package only); `explorer/cached.py`; `teaching/`;\n"
        "`pages/views/*.py`, `sae/plots/<topic>.py`; `explorer/gone.py`, `sae/old/`;\n"
        "not modules of ours: `tests/sae/x.py`, `benchmarks/tutorial_sae.py`, `python -m sae.runs.jobs`, `sae/model.pyc`.\n"
    )
    missing, gone = differences(text, tmp_path)
    assert missing == ["pages/views/home.py", "sae/runs/jobs.py", "teaching/qr.py"]
    assert gone == ["explorer/gone.py", "sae/old/"]
