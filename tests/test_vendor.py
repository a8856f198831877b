"""The pages' JavaScript and WebAssembly (scripts/vendor_js.py, `make vendor`): what the lockfile
pins is what SHA256SUMS records, the installed files are those bytes, and the gzipped copy
the page unpacks is the same WebAssembly."""

from __future__ import annotations

import gzip

import pytest

from scripts import vendor_js


def test_the_recorded_sums_list_exactly_the_files_the_lockfile_pins():
    pinned = vendor_js.wanted(vendor_js.locked_versions(vendor_js.ROOT / "package-lock.json"))
    recorded = vendor_js.read_sums(vendor_js.SUMS)
    assert set(recorded) == set(pinned)
    assert all(len(digest) == 64 for digest in recorded.values())


def test_installed_files_are_the_recorded_bytes_and_the_gzipped_webassembly_unpacks_to_its_own():
    recorded = vendor_js.read_sums(vendor_js.SUMS)
    if not all((vendor_js.VENDOR / name).is_file() for name in recorded):
        pytest.skip("static/vendor/ is not installed (make vendor)")
    for name, digest in recorded.items():
        assert vendor_js.sha256(vendor_js.VENDOR / name) == digest, name
    for name in recorded:
        if name.rsplit("/", 1)[-1] in vendor_js.GZIPPED:
            plain = (vendor_js.VENDOR / name).read_bytes()
            assert gzip.decompress((vendor_js.VENDOR / (name + ".gz")).read_bytes()) == plain


def test_the_gzipped_copy_is_the_same_bytes_every_time(tmp_path):
    source = tmp_path / "module.wasm"
    source.write_bytes(bytes(range(256)) * 1000)
    vendor_js.write_gzipped(source, tmp_path / "a.gz")
    vendor_js.write_gzipped(source, tmp_path / "b.gz")
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()
    assert gzip.decompress((tmp_path / "a.gz").read_bytes()) == source.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gz", "b.gz", "module.wasm"]  # no temporary file left
