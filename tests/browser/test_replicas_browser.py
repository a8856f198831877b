"""A class served by two app replicas behind a real nginx (deploy/nginx.conf, cookie affinity).

Two ``streamlit run`` processes share one Redis, one ``sae worker``, one
checkpoint folder and one cookie secret; nginx sends each browser to one of them
by its ``sae_replica`` cookie.  A browser on replica A trains a short run (in
the worker), stops and saves it; a browser on replica B opens the saved model.
nginx's access log shows every request of each browser, its websocket included,
reached its own replica and no other.
"""

from __future__ import annotations

import secrets
import urllib.request
from types import SimpleNamespace

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ensure_a_checkpoint, running_app, wait_for_app
from tests.browser.test_train_browser import click, open_train, save_as, start_short_run, watch_updates
from tests.services import QUEUE_KEY, nginx, redis_server, sae_worker, wait_for

COOKIE = "sae_replica"


LOGGED_S = 60  # nginx logs a request as it ends; the bound only turns a hang into a failure on a busy machine


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("replicas")
    user_dir = tmp / "user_checkpoints"
    user_dir.mkdir()
    ensure_a_checkpoint(user_dir)
    with pytest.MonkeyPatch.context() as env, redis_server(tmp) as redis:
        redis_url = redis.url
        env.setenv("SAE_REDIS_URL", redis_url)  # with its password
        env.setenv("SAE_QUEUE_KEY", QUEUE_KEY)  # the same on every replica and worker
        env.setenv("STREAMLIT_SERVER_COOKIE_SECRET", secrets.token_hex(16))  # the same on every replica
        with (
            sae_worker(redis_url, tmp / "worker.log") as worker,
            running_app(user_dir, tmp / "app_a.log") as a,
            running_app(user_dir, tmp / "app_b.log") as b,
        ):
            backends = [a.removeprefix("http://"), b.removeprefix("http://")]
            with nginx(tmp, backends) as (url, access_log):
                yield SimpleNamespace(url=url, backends=backends, access_log=access_log, worker=worker, user_dir=user_dir)


def log_lines(access_log) -> list[tuple[str, str, str]]:
    """(affinity value, replica, request) per logged request."""
    rows = []
    for line in access_log.read_text().splitlines():
        affinity, upstream, _status, request = line.split(" ", 3)
        rows.append((affinity, upstream, request))
    return rows


def replica_for(replicas, value: str) -> str:
    request = urllib.request.Request(replicas.url + "/_stcore/health", headers={"Cookie": f"{COOKIE}={value}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200 and any(c.startswith(f"{COOKIE}={value};") for c in response.headers.get_all("Set-Cookie"))

    def logged():
        return next((u for a, u, _ in reversed(log_lines(replicas.access_log)) if a == value), None)

    return wait_for(logged, LOGGED_S, "nginx to log the request")


def cookie_per_replica(replicas) -> dict[str, str]:
    """A cookie value that nginx's consistent hash sends to each replica."""
    found: dict[str, str] = {}
    for i in range(64):
        value = f"student{i}"
        found.setdefault(replica_for(replicas, value), value)
        if len(found) == len(replicas.backends):
            return found
    raise AssertionError(f"64 cookies all went to {sorted(found)}: the hash is not spreading")


def browser_on(browser, replicas, value: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_cookies([{"name": COOKIE, "value": value, "url": replicas.url}])
    page = context.new_page()
    page.set_default_timeout(60_000)
    return page


def warm_up(browser, replicas) -> None:
    """Each replica's first script run, on its home page: a deep link into a replica still
    running its very first script gets Streamlit's "Page not found" dialog over the page."""
    for backend in replicas.backends:
        page = browser.new_page()
        page.goto(f"http://{backend}/")
        wait_for_app(page)
        page.close()


def test_a_run_trained_through_one_replica_opens_on_the_other(browser, replicas):
    a, b = replicas.backends
    warm_up(browser, replicas)
    cookies = cookie_per_replica(replicas)
    assert all(replica_for(replicas, cookies[a]) == a for _ in range(5))  # the same cookie, the same replica

    trainer = browser_on(browser, replicas, cookies[a])
    open_train(trainer, replicas.url)
    start_short_run(trainer)
    assert len(watch_updates(trainer, wanted=2, timeout=90)) >= 2, "the loss chart did not grow"
    click(trainer, "tr_stop")
    trainer.get_by_text("Stopped. The model keeps").wait_for(timeout=30_000)
    wait_for_app(trainer)
    path = save_as(trainer, "from_replica_a", replicas.user_dir)  # in the folder every replica shares
    assert path.exists()
    assert ": training " in replicas.worker.log()  # the run trained in the worker, not in replica A

    reader = browser_on(browser, replicas, cookies[b])
    # The same student in a second browser tab, which nginx sends to the other replica: their
    # owner cookie (explorer/owner.py) goes with them, so their own checkpoint is in the list there.
    reader.context.add_cookies([c for c in trainer.context.cookies() if c["name"] == "sae_owner"])
    reader.goto(f"{replicas.url}/explore?ckpt=from_replica_a")
    wait_for_app(reader)
    sidebar = reader.locator("[data-testid=stSidebar]")
    expect(sidebar.get_by_role("combobox", name="Checkpoint")).to_have_value("from_replica_a")
    expect(reader.locator("[data-testid=stException]")).to_have_count(0)

    trainer.context.close()
    reader.context.close()  # nginx logs a websocket when it closes

    def both_websockets_logged():
        rows = log_lines(replicas.access_log)
        logged = {affinity for affinity, _, request in rows if "/_stcore/stream" in request}
        return rows if {cookies[a], cookies[b]} <= logged else None

    rows = wait_for(both_websockets_logged, LOGGED_S, "both websockets in nginx's log")
    for value, replica in ((cookies[a], a), (cookies[b], b)):
        reached = {upstream for affinity, upstream, _ in rows if affinity == value}
        assert reached == {replica}, f"the browser with {COOKIE}={value} reached {sorted(reached)}, not only {replica}"
