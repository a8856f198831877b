"""``python -m benchmarks.in_page``: the network in the page against today's server round trip,
in headless Chromium, side by side in one run.

One ``streamlit run`` server and one Chromium on this machine, as a student's laptop would
be if it were also the server.  Measured, each in the page's own clock (``performance.now``):

- Explore in the page: a mouse drag of the thresh slider across ``--moves`` values, one move
  every ``--interval-ms``; for each ``input`` event, the time until the first frame that shows it
  (or a later value: the newest input wins) has been painted with the reconstruction and the
  raster redrawn.  The websocket messages the page sends the server meanwhile are counted:
  a rerun needs one, so zero messages is zero reruns;
- Explore on the server (``?engine=server``, today's page): a key press on the sidebar's thresh
  slider until the page shows the new value (the latent membrane's caption names it);
- the Latent lab: a click on a cell of the code until the decoded image has been redrawn, in
  the page and on the server;
- the first load of Explore in a fresh browser (empty cache), from navigation to the first
  reconstruction drawn in the page, model file and WebAssembly included; and with the cache warm.

The server is warmed up first (one visit of each page: the model's graphs are exported then).
Prints one table and the machine's load (``uptime``) before and after; the figures go to
docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.load import ROOT, streamlit_server, wait_healthy

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-background-networking"]
VIEWPORT = {"width": 1400, "height": 1100}
IN_PAGE = "window.saeInPage && window.saeInPage.{view} && window.saeInPage.{view}.frames > {n}"

# In the page: note every input event's time, and watch a value until it changes.
WATCH = """
window.__bench = { inputs: [] };
document.addEventListener('input', (e) => { if (e.target.dataset && e.target.dataset.setting) window.__bench.inputs.push(e.timeStamp); }, true);
document.addEventListener('keydown', (e) => { window.__bench.key = e.timeStamp; }, true);
document.addEventListener('pointerdown', (e) => { window.__bench.click = e.timeStamp; }, true);
window.__bench.changed = (read) => new Promise((resolve) => {
  const before = read(), give_up = performance.now() + 60000;
  const look = () => {
    const now = read();
    if (now !== null && now !== before) resolve(performance.now());
    else if (performance.now() > give_up) resolve(null);
    else requestAnimationFrame(look);
  };
  requestAnimationFrame(look);
});
"""
# The server page's caption that names the threshold: it changes with every thresh (the MSE
# stops changing once no spike reaches the decoder).
THRESH_CAPTION = "() => { const c = [...document.querySelectorAll('[data-testid=stCaptionContainer]')]" \
    ".find(e => e.textContent.includes('White is exactly the threshold')); return c ? c.textContent : null; }"  # fmt: skip
SERVER_DECODED = "() => { const gd = document.querySelector('.st-key-lab_decoded .js-plotly-plot');" \
    " return gd && gd.data ? JSON.stringify(gd.data[2].z) : null; }"  # fmt: skip
SERVER_EDITOR = "[class*='st-key-lab_editor_'] .js-plotly-plot"


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def summary(values: list[float]) -> str:
    if not values:
        return f"{'-':>8} {'-':>8} {'-':>8} {0:>4}"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"{statistics.median(ordered):>8.1f} {p95:>8.1f} {ordered[-1]:>8.1f} {len(ordered):>4}"


def wait_idle(page) -> None:
    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]")


def open_page(context, url: str, view: str | None = None):
    """A tab at ``url`` (and its view drawn); returns it with the list of messages it sent the server."""
    print(f"  {url.split('/', 3)[-1]}", file=sys.stderr, flush=True)
    page = context.new_page()
    page.set_viewport_size(VIEWPORT)
    page.set_default_timeout(180_000)
    page.add_init_script(WATCH)
    sent = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda _: sent.append(1)) if "_stcore/stream" in ws.url else None)
    page.goto(url)
    if view:
        page.wait_for_function(f"() => {IN_PAGE.format(view=view, n=0)}")
    page.wait_for_selector("[data-testid=stApp][data-test-connection-state=CONNECTED]")
    wait_idle(page)
    return page, sent


def timings(page, view: str, kind: str) -> list[list[float]]:
    return page.evaluate(f"() => window.saeInPage.{view}.timings.list.filter((t) => t[2] === '{kind}')")


def first_load(browser, url: str, loads: int) -> tuple[list[float], list[float]]:
    """Navigation to the first reconstruction painted in the page: a fresh browser profile, then a reload."""
    cold, warm = [], []
    for _ in range(loads):
        context = browser.new_context()
        page, _ = open_page(context, url, "explore")
        cold.append(timings(page, "explore", "open")[0][1])  # painted, in ms since the navigation began
        page.reload()
        page.wait_for_function(f"() => {IN_PAGE.format(view='explore', n=0)}")
        warm.append(timings(page, "explore", "open")[0][1])
        context.close()
    return cold, warm


def drag_in_page(browser, url: str, moves: int, interval_ms: int) -> tuple[list[float], int]:
    """Latencies of a mouse drag's input events, and the messages sent to the server meanwhile."""
    context = browser.new_context()
    page, sent = open_page(context, url, "explore")
    slider = page.locator("input[data-setting=thresh]")
    box = slider.bounding_box()
    low, high, value, step = (float(slider.evaluate(f"s => s.{k}")) for k in ("min", "max", "value", "step"))
    thumb = 8  # about half a thumb: where the track's ends sit inside the box

    def x_of(v: float) -> float:
        return box["x"] + thumb + (v - low) / (high - low) * (box["width"] - 2 * thumb)

    y = box["y"] + box["height"] / 2
    page.mouse.move(x_of(value), y)
    page.mouse.down()
    messages_before = len(sent)
    for i in range(1, moves + 1):
        page.mouse.move(x_of(value + i * step), y)
        page.wait_for_timeout(interval_ms)
    page.wait_for_function("() => window.saeInPage.explore.timings.list.at(-1)[0] >= window.__bench.inputs.at(-1)")
    messages = len(sent) - messages_before
    inputs = page.evaluate("() => window.__bench.inputs")
    frames = timings(page, "explore", "input")
    page.mouse.up()  # the release: one rerun, not measured here
    context.close()
    latencies = []
    for t in inputs:
        shown = [painted for asked, painted, _ in frames if asked >= t]  # this value, or a newer one
        latencies.append(min(shown) - t)
    return latencies, messages


def server_round_trip(browser, url: str, moves: int) -> list[float]:
    """Today's page: a key press on the sidebar's thresh slider until the page shows the new thresh."""
    context = browser.new_context()
    page, _ = open_page(context, url)
    page.wait_for_function(f"() => ({THRESH_CAPTION})() !== null")
    slider = page.locator("[data-testid=stSidebar] input[type=range][aria-label^=thresh]")
    latencies = []
    for _ in range(moves):
        slider.focus()
        page.evaluate(f"() => {{ window.__bench.pending = window.__bench.changed({THRESH_CAPTION}); }}")  # watching, not awaited
        slider.press("ArrowRight")
        latencies.append(_since(page, "key"))
        wait_idle(page)
    context.close()
    return latencies


def _since(page, event: str) -> float:
    """Milliseconds from the last ``event`` ("key", "click") to the change being watched."""
    changed = page.evaluate("() => window.__bench.pending")
    if changed is None:
        raise RuntimeError(f"the page did not change within a minute of the {event}")
    return changed - page.evaluate(f"() => window.__bench.{event}")


def lab_in_page(browser, url: str, clicks: int) -> list[float]:
    context = browser.new_context()
    page, _ = open_page(context, url, "lab")
    neurons, steps = page.evaluate("() => [window.saeInPage.lab.data.neurons, window.saeInPage.lab.data.steps]")
    for i in range(clicks):
        drawn = len(timings(page, "lab", "click"))
        neuron, step = (3 * i) % neurons, i % steps
        page.locator(f"[data-testid=in-page-lab] [data-grid] [data-n='{neuron}'][data-t='{step}']").click()
        page.wait_for_function(f"() => window.saeInPage.lab.timings.list.filter((t) => t[2] === 'click').length > {drawn}")
        page.wait_for_timeout(150)
    latencies = [painted - asked for asked, painted, _ in timings(page, "lab", "click")]
    context.close()
    return latencies


def lab_on_server(browser, url: str, clicks: int) -> list[float]:
    context = browser.new_context()
    page, _ = open_page(context, url)
    page.wait_for_function(f"() => ({SERVER_DECODED})() !== null")
    latencies = []
    for i in range(clicks):
        x, y = page.evaluate(
            "([sel, i]) => { const gd = document.querySelector(sel), L = gd._fullLayout, box = gd.getBoundingClientRect();"
            " const neuron = (3 * i) % Math.round(L.yaxis.range[0] + 0.5);"  # its range is [neurons - 0.5, -0.5]
            " return [box.left + L._size.l + L.xaxis.l2p(1), box.top + L._size.t + L.yaxis.l2p(neuron)]; }",
            [SERVER_EDITOR, i],
        )
        page.evaluate(f"() => {{ window.__bench.pending = window.__bench.changed({SERVER_DECODED}); }}")
        page.mouse.click(x, y)
        latencies.append(_since(page, "click"))
        wait_idle(page)
    context.close()
    return latencies


def sizes() -> dict[str, int]:
    models = sorted((ROOT / "static" / "models").glob("*.onnx"), key=lambda p: p.stat().st_mtime)[-2:]
    vendor = [p for p in (ROOT / "static" / "vendor").rglob("*") if p.is_file() and p.name != "SHA256SUMS"]
    return {"model files (encoder + decoder)": sum(p.stat().st_size for p in models), "vendor files": sum(p.stat().st_size for p in vendor)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.in_page", description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=20, help="slider values dragged across, and server key presses")
    parser.add_argument("--interval-ms", type=int, default=50, help="between two moves of the drag")
    parser.add_argument("--clicks", type=int, default=10, help="lab clicks, in the page and on the server")
    parser.add_argument("--loads", type=int, default=3, help="first loads of Explore in a fresh browser")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    print("load before:", uptime())
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        env = {"SAE_USER_CHECKPOINTS": str(Path(tmp) / "user")}
        url, process = stack.enter_context(streamlit_server(ROOT, env=env, log=Path(tmp) / "streamlit.log"))
        wait_healthy(url, process)
        browser = stack.enter_context(sync_playwright()).chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        warm = browser.new_context()  # the server's first visits: model graphs exported, caches filled
        for path, view in (("explore", "explore"), ("lab", "lab")):
            open_page(warm, f"{url}/{path}", view)
        warm.close()
        explore = f"{url}/explore?source=MNIST&index=3"
        rows = {}
        rows["Explore: first load, fresh browser (navigation to first drawing)"], rows["Explore: first load, reload (cache warm)"] = first_load(
            browser, explore, args.loads
        )
        drag, messages = drag_in_page(browser, explore, args.moves, args.interval_ms)
        rows["Explore in the page: drag input -> reconstruction + raster painted"] = drag
        rows["Explore on the server: key press -> the page shows the new thresh"] = server_round_trip(browser, explore + "&engine=server", args.moves)
        rows["Latent lab in the page: click -> decoded image painted"] = lab_in_page(browser, f"{url}/lab?lab_a=0", args.clicks)
        rows["Latent lab on the server: click -> decoded image changed"] = lab_on_server(browser, f"{url}/lab?lab_a=0&engine=server", args.clicks)
        browser.close()
    print(f"\n{'ms':<72} {'p50':>8} {'p95':>8} {'max':>8} {'n':>4}")
    for what, values in rows.items():
        print(f"{what:<72} {summary(values)}")
    print(f"\nmessages to the server while dragging (a rerun needs one): {messages}")
    for what, size in sizes().items():
        print(f"{what}: {size / 1e6:.2f} MB")
    print("load after:", uptime())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
