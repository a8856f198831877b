"""Warm start: what the first visitor of a fresh server would wait for, done before anyone arrives.

A fresh server's first Explore and first Compare took many times longer than later
ones: the first visitor paid for loading the model and MNIST, starting the forward
process (sae/runs/forward_process.py), importing and first running plotly's figure
code and pyarrow, and Compare's default sweep and trained-model runs.  :func:`start`
does all of that once per process, in a thread, into the same process-wide caches
the pages read (``explorer.resources``, ``explorer.cached``), through the same
functions the pages call.

``python -m explorer.warmup`` (what ``make run`` runs) warms up first and then starts
the server in the same process, so no visitor can arrive before it is done: the
health check answers after the warm-up (at most ``SERVE_AFTER_S``).  A warm-up that
ran while the first visitor was already there (started from app.py, tried) made that
visitor's first Explore and Compare slower, not faster: its sweeps took the cores
from the visitor, and a visitor wanting the same sweep waited for the warm-up's copy.
So a plain ``streamlit run app.py`` does no warm-up and behaves as before.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
import time

log = logging.getLogger(__name__)

_lock = threading.Lock()
_thread: threading.Thread | None = None
_done = threading.Event()
_steps: list[tuple[str, float]] = []  # (what, seconds), for the log and the tests
SERVE_AFTER_S = 120.0  # main() starts the server after the warm-up, or after this long at worst


def start() -> None:
    """Start the warm-up once per process (later calls do nothing).

    Not under ``streamlit.testing`` (no server to warm; a test computes what it needs), nor with
    ``SAE_WARMUP=0``."""
    global _thread
    if os.environ.get("SAE_WARMUP", "1") == "0" or _under_app_test():
        return
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_run, name="sae-warmup", daemon=True)
            _thread.start()


def _under_app_test() -> bool:
    from streamlit import config

    return bool(config.get_option("global.appTest"))


def running() -> bool:
    return _thread is not None and not _done.is_set()


def wait(timeout: float | None = None) -> bool:
    """Block until the warm-up has finished (for tests and the launcher's log); True when it has."""
    return _done.wait(timeout)


# --------------------------------------------------------------------------- the work


def _run() -> None:
    begin = time.perf_counter()
    _quiet_bare_mode_warnings()
    try:
        _kick_forward_process()  # it imports torch (seconds) while the model and MNIST load
        model = _step("model and MNIST", _model_and_data)
        _step("Explore's forward process and figures", lambda: _explore(model))
        _step("the network for the browser", lambda: _browser_model(model))
        _step("Compare's default view", lambda: _compare(model))
    except Exception:  # a failed warm-up only means the first visitor computes it, as before
        log.exception("warm-up failed; pages will compute what they need on first use")
    finally:
        _done.set()
        log.info("warm-up done in %.1f s: %s", time.perf_counter() - begin, ", ".join(f"{w} {s:.1f} s" for w, s in _steps))


def _kick_forward_process() -> None:
    """Start Explore's forward process now, without waiting: it imports torch while the model loads."""
    from sae.runs.forward_process import default_worker

    default_worker().start(wait_s=0)


class _NotThisThread(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.threadName != "sae-warmup"


def _quiet_bare_mode_warnings() -> None:
    """st.cache_resource called outside a script run logs "missing ScriptRunContext": expected here."""
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(_NotThisThread())


def _step(what: str, fn):
    t0 = time.perf_counter()
    value = fn()
    _steps.append((what, time.perf_counter() - t0))
    return value


DEVICE = "cpu"  # the sidebar's default device (the first one available)


def _model_and_data():
    from explorer.resources import shared_checkpoint, test_set
    from sae.io.checkpoints import default_checkpoint_path

    test_set()
    return shared_checkpoint(default_checkpoint_path(), DEVICE).model


def _explore(model) -> None:
    """One forward of the page's example digit in the forward process, and every Explore figure once."""
    from explorer.digit_input import EXAMPLE_INDEX
    from explorer.resources import test_set
    from sae.model import SPIKING_LAYERS
    from sae.plots import inside
    from sae.runs.forward_process import default_worker

    digit = test_set()[0][EXAMPLE_INDEX : EXAMPLE_INDEX + 1]
    default_worker().start()  # the forward process, ready; this forward then loads the model into it
    result = default_worker().run_digit(model, digit, model.config.neuron_settings())
    figures = [
        inside.digit_image(result.input),
        inside.reconstruction_playback(result),
        inside.latent_raster(result),
        inside.latent_membrane(result),
        inside.layer_activity(result),
        inside.digit_comparison(result),
    ]
    figures += [inside.layer_membrane(result, layer) for layer in (*SPIKING_LAYERS, "output")]
    _as_streamlit_sends(*figures)


def _browser_model(model) -> None:
    """The shipped model's step graphs for the in-page engine (explorer/in_page.py): seconds of export."""
    from explorer.in_page import MODELS
    from sae.io.browser_model import browser_model

    browser_model(model, MODELS)


def _as_streamlit_sends(*figures) -> None:
    """What st.plotly_chart does with each figure (plotly_chart.py): the first call imports and builds a lot."""
    import plotly.io
    import plotly.tools

    for fig in figures:
        plotly.io.to_json(plotly.tools.return_figure_from_figure_or_data(fig, validate_figure=True), validate=False)


def _compare(model) -> None:
    """The Compare page's first view ("What does thresh do?" with its default inputs) into the
    shared result cache, through the page's own calls: its digits, ``question_sweep`` and
    ``trained_comparison``.  tests/test_warmup.py checks that a first Compare after the
    warm-up computes nothing."""
    from streamlit import dataframe_util

    from explorer import texts
    from explorer.cached import SHOWN, question_sweep, trained_comparison
    from explorer.compare_inputs import load_trained, test_digits
    from sae.analysis import trained_for_setting
    from sae.io.fingerprints import served_model_fingerprint
    from sae.plots import compare as plots

    images, _, digits_key = test_digits()
    values = texts.QUESTIONS["thresh"]["default"]
    result = question_sweep(model, served_model_fingerprint(model), model.config.neuron_settings(), "thresh", values, images, digits_key)
    _as_streamlit_sends(
        plots.series_grid(result, "thresh", SHOWN), plots.mse_vs(result, "thresh"), plots.rates_vs(result, "thresh"),
        plots.series_rasters(result, "thresh"),
    )  # fmt: skip

    found = load_trained("thresh", DEVICE)
    if not found.models:
        return
    reference = found.models.get(trained_for_setting.REFERENCE_FILENAME, model)
    rows = trained_comparison("thresh", found.entries, found.models, reference, images, digits_key)
    _as_streamlit_sends(plots.trained_vs_after(rows, "thresh"), plots.trained_reconstructions(rows, images[:SHOWN, 0].cpu().numpy(), "thresh"))
    dataframe_util.convert_anything_to_arrow_bytes([row.table_row({}) for row in rows])  # st.dataframe: pyarrow


def freeze_long_lived_objects() -> None:
    """Keep the garbage collector's full passes off what lives as long as the server.

    Under a class the full (generation 2) collections walk every long-lived object (modules,
    torch, plotly, the caches) and hold the GIL for a long time, several times a minute: a
    slider move that meets one waits for it (``python -m benchmarks.load`` shows the
    slow moves).  ``gc.freeze()`` after the warm-up moves everything alive then out of the
    collector's reach, and what sessions create is still collected as before."""
    gc.collect()
    gc.freeze()
    log.info("garbage collector: %d long-lived objects frozen", gc.get_freeze_count())


# --------------------------------------------------------------------------- the launcher


def main(argv: list[str] | None = None) -> int:
    """``python -m explorer.warmup [streamlit options]``: warm up, then ``streamlit run app.py [options]``.

    The warm-up fills this process's caches (``st.cache_resource`` keeps them process-wide),
    and the server that starts afterwards in the same process serves from them."""
    from streamlit.web import cli

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.info("warming up before serving: model, MNIST, forward process, Compare's first view")
    start()
    if wait(SERVE_AFTER_S):
        freeze_long_lived_objects()
    else:
        log.warning("warm-up still running after %.0f s: serving anyway", SERVE_AFTER_S)
    sys.argv = ["streamlit", "run", "app.py", *(sys.argv[1:] if argv is None else argv)]
    return cli.main()


if __name__ == "__main__":
    sys.exit(main())
