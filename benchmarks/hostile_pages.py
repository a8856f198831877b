"""Attacks through links, uploads and heavy pages: what one student can do to the server with a browser.

Each is an attack of the hostile-class benchmark (``benchmarks.hostile``): an async
function of the target and the counts, returning what the attacker got.  They
read only what a browser would show (texts, warnings, tracebacks, HTTP statuses)
and the server's memory, so they report today's behaviour and a hardened
server's alike: a traceback, a live link, or one line saying what was refused.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import urllib.request
from pathlib import Path

import torch

from benchmarks.hostile_common import Counts, Outcome, Target, query, traceback_line, visit, what_it_said
from benchmarks.page_reading import cache_bytes, link_value, links_to, mentioning, quote
from benchmarks.process_figures import rss_mib
from benchmarks.streamlit_session import Session
from benchmarks.streamlit_upload import attach, put_file
from benchmarks.students import slider_values
from sae import limits
from sae.io.checkpoints import FORMAT, VERSION
from sae.model import SAEConfig, SpikingAutoencoder

# ---------------------------------------------------------------- values a link carries


def overflow_links(counts: Counts) -> list[tuple[str, str, dict, str, str]]:
    """(label, page, what the page needs to show the parameter, the parameter, a number no widget can hold)."""
    return [
        ("index=1e400", "explore", {"source": "MNIST"}, "index", "1e400"),
        ("lab_a=inf", "lab", {}, "lab_a", "inf"),
        ("c_n=1e400", "compare", {}, "c_n", "1e400"),
        (f"c_seed=<{counts.seed_digits:,} digits>", "compare", {}, "c_seed", "9" * counts.seed_digits),
    ]


async def url_overflow(target: Target, counts: Counts) -> Outcome:
    """Each link opened twice (a reload): a traceback, or one line saying what was used instead."""
    cells = []
    for label, page, base, name, value in overflow_links(counts):
        reference = await visit(target.base_url, page, base)
        seen = await visit(target.base_url, page, {**base, name: value}, reruns=2)
        said = what_it_said(seen, reference, name)
        if len(seen.exceptions) > 1:
            said += " (again on the second run)"
        cells.append(f"{label}: {said or 'no line'}")
    return Outcome("; ".join(cells))


MARKDOWN_LINKS = (
    ("thresh=[Log in again](http://x)", "explore", {"thresh": "[Log in again](http://x)"}, "http://x"),
    ("index=![x](http://host/t.png)", "explore", {"source": "MNIST", "index": "![x](http://host/t.png)"}, "host/t.png"),
)


async def markdown_echo(target: Target, counts: Counts) -> Outcome:
    """A link whose value is Markdown: does the page render it as a live link or an image?"""
    cells = []
    for label, page, params, needle in MARKDOWN_LINKS:
        seen = await visit(target.base_url, page, params)
        made = [(link, line) for line in seen.texts for link in links_to(line, needle)]
        if made:
            link, line = made[0]
            cells.append(f"{label}: a live {link} in “{quote(line, 80)}”")
        elif seen.exceptions:
            cells.append(f"{label}: {traceback_line(seen.exceptions)}")
        else:
            echoed = mentioning(seen.alerts, *params)
            cells.append(f"{label}: no link; " + (f"the line: “{quote(echoed[0])}”" if echoed else "no line"))
    return Outcome("; ".join(cells))


UNKNOWN_CHOICES = (  # (page, the parameter, a value it cannot take, what the page needs to show that parameter)
    ("explore", "ckpt", "no_such_model", {}),
    ("explore", "device", "tpu", {}),
    ("explore", "source", "Camera", {}),
    ("explore", "view", "Nope", {}),
    ("explore", "layer", "nope", {"view": "Inside a layer"}),
    ("compare", "c_view", "Nope", {}),
)


async def unknown_choices(target: Target, counts: Counts) -> Outcome:
    """A choice no list offers: is there a line saying what was used instead?"""
    cells = []
    for page, name, value, base in UNKNOWN_CHOICES:
        reference = await visit(target.base_url, page, base)
        seen = await visit(target.base_url, page, {**base, name: value})
        said = what_it_said(seen, reference, name, value)
        if not said:
            now = link_value(seen.query_string, name)
            said = f"no line; the link now says {name}={now}" if now is not None else f"no line; {name} dropped from the link"
        cells.append(f"{name}={value}: {said}")
    return Outcome("; ".join(cells))


# ---------------------------------------------------------------- heavy pages


def big_compare_params(counts: Counts, seed: int) -> dict:
    thresholds = [f"{v:g}" for v in limits.THRESH_CHOICES]
    return {"c_n": counts.compare_digits, "steps": counts.compare_steps, "c_thresh_values": thresholds, "c_seed": seed}


def seconds_text(seconds: float | None) -> str:
    return "no answer" if seconds is None else f"{seconds:.1f} s"


async def big_compare(target: Target, counts: Counts) -> Outcome:
    """Compare over many digits at many steps and every threshold, with a new seed (no cache answers);
    a default-sized Compare (its own new seed) timed alone first, then while the big one runs."""
    rng = random.Random()
    alone = await visit(target.base_url, "compare", {"c_seed": rng.randrange(1, 10_000)}, timeout=600)
    attacker = asyncio.create_task(visit(target.base_url, "compare", big_compare_params(counts, rng.randrange(1, 10_000)), timeout=900))
    await asyncio.sleep(3.0)  # the big sweep has started
    beside = await visit(target.base_url, "compare", {"c_seed": rng.randrange(1, 10_000)}, timeout=900)
    seen = await attacker
    swept = [t for t in seen.texts if t.startswith("Swept ")]
    said = what_it_said(seen, alone)
    got = said or (f"accepted ({seen.statuses[0]}): “{quote(swept[0])}”" if swept else f"run {seen.statuses[0]}, nothing swept")
    bystander = (
        f"a default-sized Compare with a new seed: {seconds_text(alone.seconds[0])} alone, "
        f"{seconds_text(beside.seconds[0])} beside it ({beside.statuses[0]})"
    )
    return Outcome(f"{counts.compare_digits} digits, num_steps {counts.compare_steps}, 10 thresholds: {got}", [bystander])


CHURN_MOVES = 5  # thresh moves per churning session: with its first view, as many results as a session keeps


async def churning_student(base_url: str, index: int) -> str:
    """Open Explore at num_steps 50 on digit ``index``, move thresh a few times, leave: "ok" or what went wrong."""
    async with Session(base_url, "explore", query({"steps": 50, "source": "MNIST", "index": index})) as s:
        run = await s.rerun(timeout=300)
        slider = s.find_widget("slider", "thresh")
        if run.status != "ok" or slider is None or s.exceptions:
            return (s.exceptions or s.alerts[-1:] or [f"first run {run.status}"])[0]
        for value in slider_values(slider)[:CHURN_MOVES]:
            s.set_slider(slider.id, value)
            await s.rerun(timeout=300)
        return "ok" if not s.exceptions else s.exceptions[0]


async def session_churn(target: Target, counts: Counts) -> Outcome:
    """Explore sessions at num_steps 50 that come, move thresh a few times and go, a few at a time; memory
    after they closed and again after Streamlit's disconnected-session TTL."""
    before = rss_mib(target.pid)
    ended = []
    for start in range(0, counts.churn, counts.churn_at_once):
        batch = range(start, min(counts.churn, start + counts.churn_at_once))
        ended += await asyncio.gather(*(churning_student(target.base_url, i) for i in batch))
    after = rss_mib(target.pid)
    await asyncio.sleep(counts.churn_wait_s)
    later = rss_mib(target.pid)
    not_ok = [e for e in ended if e != "ok"]
    got = f"{counts.churn - len(not_ok)} of {counts.churn} sessions rendered num_steps 50 and moved thresh {CHURN_MOVES} times"
    if not_ok:
        got += f"; {len(not_ok)} not: “{quote(not_ok[0])}”"
    return Outcome(got, later=memory_later(before, after, later, counts.churn_wait_s))


def memory_later(before: float | None, after: float | None, later: float | None, waited_s: float) -> str:
    if None in (before, after, later):
        return ""
    return f"{after - before:+.0f} MiB right after, {later - before:+.0f} MiB {waited_s:.0f} s later"


def upload_store_mb(base_url: str) -> str:
    """What Streamlit's upload store holds now (its own count, from /_stcore/metrics), or "?"."""
    try:
        with urllib.request.urlopen(base_url + "/_stcore/metrics", timeout=30) as response:
            held = cache_bytes(response.read().decode(errors="replace"), "UploadedFileManager")
    except OSError:
        held = None
    return "?" if held is None else f"{held / 2**20:,.0f} MB"


async def big_upload(target: Target, counts: Counts) -> Outcome:
    """A body of ``upload_mb`` MB PUT to the upload URL of one session (the browser caps uploads at the
    app's 20 MB; the server's own cap is what this tries); memory after, and after the tab closed."""
    before = rss_mib(target.pid)
    async with Session(target.base_url, "explore") as s:
        await s.rerun(timeout=120)
        upload = await put_file(s, "big.pt", size=counts.upload_mb << 20)
        after, held = rss_mib(target.pid), await asyncio.to_thread(upload_store_mb, target.base_url)
    await asyncio.sleep(counts.upload_wait_s)
    later, held_later = rss_mib(target.pid), await asyncio.to_thread(upload_store_mb, target.base_url)
    verdict = "accepted" if upload.accepted else "refused"
    got = f"{counts.upload_mb} MB: HTTP {upload.status or '-'} {upload.reason} ({verdict})"
    kept = f"; the upload store holds {held}, {held_later} after the tab closed"
    return Outcome(got + kept, later=memory_later(before, after, later, counts.upload_wait_s))


# ---------------------------------------------------------------- a checkpoint of another shape

SHAPES = ((8, 32), (256, 8))  # (input_size, latent_dim): a small latent keeps the 256 model under the 20 MB cap


def shaped_checkpoint(folder: Path, input_size: int, latent_dim: int) -> bytes:
    """A well-formed checkpoint file of a network made for ``input_size`` x ``input_size`` images,
    written the way ``save_checkpoint`` writes one (which itself refuses such a network now)."""
    model = SpikingAutoencoder(SAEConfig(input_size=input_size, latent_dim=latent_dim))
    payload = {"format": FORMAT, "version": VERSION, "config": model.config.to_dict(), "state_dict": model.state_dict()}
    path = folder / f"input{input_size}.pt"
    torch.save(payload, path)
    return path.read_bytes()


async def upload_and_visit(base_url: str, name: str, data: bytes) -> list[str]:
    """Upload a checkpoint through the sidebar, then open Explore, the Latent lab and Compare with it."""
    cells = []
    async with Session(base_url, "explore") as s:
        await s.rerun(timeout=120)
        upload = await put_file(s, name, data=data)
        attach(s, s.widget_by_key("sb_upload").id, upload)
        shown = len(s.sidebar_alerts)
        await s.rerun(timeout=120)
        chosen = (link_value(s.query_string, "ckpt") or "").endswith(name)  # the sidebar writes its choice into the link
        refusal = s.sidebar_alerts[shown:]
        cells.append("upload accepted" if not refusal else f"upload refused: “{quote(refusal[0])}”")
        for page in ("explore", "lab", "compare"):
            s.go_to(page)
            errors = len(s.exceptions)
            run = await s.rerun(timeout=300)
            used = link_value(s.query_string, "ckpt") or ""
            other = "" if used.endswith(name) else f" (with {used or 'no checkpoint'})"
            cells.append(f"{page}: {traceback_line(s.exceptions[errors:]) or run.status}{other}")
        if not chosen and not refusal:
            cells.append("(the sidebar did not switch to it)")
    return cells


async def odd_shape(target: Target, counts: Counts) -> Outcome:
    cells = []
    with tempfile.TemporaryDirectory() as folder:
        for input_size, latent_dim in SHAPES:
            data = shaped_checkpoint(Path(folder), input_size, latent_dim)
            found = await upload_and_visit(target.base_url, f"input{input_size}.pt", data)
            cells.append(f"input {input_size} (latent {latent_dim}): " + ", ".join(found))
    return Outcome("; ".join(cells))
