"""Copy the few files the pages run in the browser from node_modules/ into static/vendor/, checked.

``make vendor`` runs ``npm ci`` first: npm installs exactly what package-lock.json pins and
checks every package against the lockfile's integrity hash.  This script then copies only
the files the page loads (and a package's licence file) to ``static/vendor/<package>@<version>/``
(the WebAssembly also gzipped beside itself, see ``GZIPPED``) and checks each against
``static/vendor/SHA256SUMS``, the committed record of what was
reviewed.  The version in the folder name makes every URL name one content for good, so a
browser may cache it as long as it likes.  Streamlit serves ``static/`` (``.streamlit/config.toml``).

To move to another version: ``npm install --save-exact <package>@<version>``, then
``python scripts/vendor_js.py --record`` and review the change to SHA256SUMS.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "static" / "vendor"
SUMS = VENDOR / "SHA256SUMS"
# Files kept gzipped beside themselves (<name>.gz), which the page unpacks: Streamlit compresses
# what it serves from static/ anew on every request, seconds of a class's first visits for these.
GZIPPED = ("ort-wasm-simd-threaded.wasm",)
# package -> the files of it that the page needs (paths inside the package).
NEEDED = {
    "onnxruntime-web": (
        "dist/ort.wasm.min.mjs",  # the WebAssembly backend only (no WebGL/WebGPU code)
        "dist/ort-wasm-simd-threaded.mjs",  # its loader, fetched by ort.wasm.min.mjs
        "dist/ort-wasm-simd-threaded.wasm",
    ),  # the package has no LICENSE file: the MIT notice heads ort.wasm.min.mjs
    "plotly.js-cartesian-dist-min": ("plotly-cartesian.min.js", "LICENSE"),  # heatmaps and bars: the full bundle is 3x larger
}


def locked_versions(lockfile: Path) -> dict[str, str]:
    packages = json.loads(lockfile.read_text())["packages"]
    return {name: packages[f"node_modules/{name}"]["version"] for name in NEEDED}


def wanted(versions: dict[str, str]) -> dict[str, Path]:
    """static/vendor-relative name -> the file in node_modules it is copied from."""
    return {
        f"{name}@{versions[name]}/{Path(inside).name}": ROOT / "node_modules" / name / inside for name, files in NEEDED.items() for inside in files
    }


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_sums(path: Path) -> dict[str, str]:
    sums = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split(maxsplit=1)
            sums[name.strip()] = digest
    return sums


def copy_atomically(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_gzipped(source: Path, target: Path) -> None:
    """``source`` gzipped (the same bytes every time: no name, no time in the header), atomically."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        Path(tmp).write_bytes(gzip.compress(source.read_bytes(), compresslevel=9, mtime=0))
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="write SHA256SUMS from node_modules (after choosing another version)")
    args = parser.parse_args(argv)
    files = wanted(locked_versions(ROOT / "package-lock.json"))
    missing = [str(p.relative_to(ROOT)) for p in files.values() if not p.is_file()]
    if missing:
        print(f"not in node_modules (run `npm ci` first): {', '.join(missing)}", file=sys.stderr)
        return 1
    if args.record:
        lines = [f"{sha256(source)}  {name}" for name, source in sorted(files.items())]
        SUMS.parent.mkdir(parents=True, exist_ok=True)
        SUMS.write_text("# sha256 of every file in static/vendor/, written by scripts/vendor_js.py --record\n" + "\n".join(lines) + "\n")
    sums = read_sums(SUMS)
    if set(sums) != set(files):
        print(f"{SUMS.relative_to(ROOT)} lists other files than package-lock.json pins: record them anew (--record)", file=sys.stderr)
        return 1
    for name, source in files.items():
        if sha256(source) != sums[name]:
            print(f"{source.relative_to(ROOT)} differs from its recorded sha256: not copied", file=sys.stderr)
            return 1
        target = VENDOR / name
        if not target.is_file() or sha256(target) != sums[name]:
            copy_atomically(source, target)
        packed = target.with_name(target.name + ".gz")
        if target.name in GZIPPED and (not packed.is_file() or gzip.decompress(packed.read_bytes()) != target.read_bytes()):
            write_gzipped(target, packed)
    for folder in VENDOR.iterdir():  # other versions' folders, left by an earlier install
        if folder.is_dir() and not any(name.startswith(folder.name + "/") for name in files):
            shutil.rmtree(folder)
    print(f"static/vendor: {len(files)} files checked against SHA256SUMS")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
