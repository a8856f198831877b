"""The warm-up fills what a fresh server's first Explore and first Compare would compute.

Run synchronously here (the background thread is off under ``streamlit.testing``):
after it, an AppTest visit of Compare must not sweep or run trained models again,
and Explore's forward process must be running with the shipped model loaded.
"""

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from explorer import warmup
from sae.analysis import sweep, trained_for_setting
from sae.runs.forward_process import default_worker

APP = str(Path(__file__).resolve().parent.parent / "app.py")


@pytest.fixture
def cold_caches():
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def test_first_compare_after_the_warmup_computes_nothing(cold_caches, monkeypatch):
    model = warmup._model_and_data()
    warmup._explore(model)
    warmup._compare(model)
    assert default_worker()._process is not None and default_worker()._loaded  # loaded there (other tests may add more)

    calls = []
    monkeypatch.setattr(sweep, "run_sweep", lambda *a, **k: calls.append("sweep") or pytest.fail("swept again"))
    monkeypatch.setattr(trained_for_setting, "compare_trained", lambda *a, **k: calls.append("trained") or pytest.fail("ran again"))
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("pages/views/compare.py")
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert calls == []


def test_no_background_warmup_under_apptest_or_when_turned_off(monkeypatch):
    started = []
    monkeypatch.setattr(warmup.threading, "Thread", lambda *a, **k: started.append(k) or pytest.fail("started"))
    monkeypatch.setattr(warmup, "_thread", None)
    monkeypatch.setattr(warmup, "_under_app_test", lambda: True)
    warmup.start()
    monkeypatch.setattr(warmup, "_under_app_test", lambda: False)
    monkeypatch.setenv("SAE_WARMUP", "0")
    warmup.start()
    assert started == []
