"""Check lesson files before a class: ``python -m teaching check lessons/ my_lesson.toml [--facts]``.

Prints one line per problem (nothing but "ok" lines when all is well) and exits 1 on any problem.
``--facts`` also measures every check the lessons state, on the lesson's checkpoint (or the one
``--checkpoint`` names) and the MNIST test set.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from teaching.lessons import Lesson, read_lesson


def _files(paths: list[str]) -> list[Path]:
    found = []
    for path in map(Path, paths):
        found += sorted(path.glob("*.toml")) if path.is_dir() else [path]
    return found


def _bench(lesson: Lesson, checkpoint: str | None, cache: dict):
    """The model and test set a lesson's facts are measured on (loaded once per checkpoint)."""
    from sae.data.mnist import mnist_tensors
    from sae.io.checkpoints import list_checkpoints, load_checkpoint
    from teaching.facts import Bench

    source = checkpoint or next((info.path for info in list_checkpoints() if info.name == lesson.checkpoint), None)
    if source is None:
        raise FileNotFoundError(f"no checkpoint named {lesson.checkpoint!r}; name one with --checkpoint")
    if source not in cache:
        images, labels = mnist_tensors(train=False)
        cache[source] = Bench(load_checkpoint(source).model.eval(), images, labels)
    return cache[source]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m teaching", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="validate lesson files (and with --facts, the facts they state)")
    check.add_argument("paths", nargs="+", help="lesson files or folders of them")
    check.add_argument("--facts", action="store_true", help="measure every check on the model")
    check.add_argument("--checkpoint", help="the checkpoint file to measure on (default: the one each lesson names)")
    args = parser.parse_args(argv)

    problems, benches = 0, {}
    for path in _files(args.paths):
        lesson, found = read_lesson(path)
        if lesson is not None and args.facts:
            try:
                found = lesson.check_facts(_bench(lesson, args.checkpoint, benches))
            except (OSError, ValueError) as error:
                found = [f"{path.name}: facts not checked: {error}"]
        for line in found:
            print(line)
        problems += len(found)
        if lesson is not None and not found:
            print(f"ok: {path.name} ({lesson.title}, {len(lesson.steps)} steps{', facts hold' if args.facts else ''})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
