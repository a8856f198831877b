"""A hostile class: attacks one student (or script) can make, replayed beside a class of well-behaved ones.

    python -m benchmarks.hostile                       # every attack, against servers it starts
    python -m benchmarks.hostile --quick               # the same with tiny counts: a smoke run
    python -m benchmarks.hostile --attack save-race    # one attack (repeat --attack for more); --list names them
    python -m benchmarks.hostile --train               # the class also trains a "One minute" run
    python -m benchmarks.hostile --redis               # also the queue attacks (needs redis-server)
    python -m benchmarks.hostile --url http://127.0.0.1:8501   # against a running server (no queue attacks)

First the class alone (the baseline), then each attack, one at a time, with
bounded counts: the attacks that change nothing another one measures share one
server, each other attack gets a fresh one.  The class (``benchmarks.hostile_class``, a process of its own)
is explorers moving ``thresh``, one student opening Compare at the defaults,
and with ``--train`` one training run.  Per attack it prints one Markdown table
row: what the attacker got (a traceback, a live link, an HTTP status, or the one
line that refused it), the class's p95 on Explore and Compare meanwhile, the
training run's steps, the server's RSS before / at its peak / after, and what
any other student saw change.  The whole run ends with the table, its date, CPU
and command, ready for docs/performance.md.

Loopback only.  Files a server saves go to a temporary folder when this starts
the server; against ``--url`` the checkpoint attacks leave their files in that
server's folder.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlparse

from benchmarks import hostile_pages, hostile_redis, hostile_training
from benchmarks.hostile_common import QUICK, Attack, Counts, Outcome, Target
from benchmarks.latency import percentile
from benchmarks.page_reading import cpu_model, markdown_table, quote
from benchmarks.process_figures import rss_mib, sample
from benchmarks.server_launcher import ROOT, server_pid, started_servers, wait_healthy
from benchmarks.streamlit_session import Session

ATTACK_LIMIT_S = 900.0  # one attack that takes longer is cut off and reported so
CLASS_READY_S = 400.0
CLASS_FINISH_S = 180.0  # the class lets a slow visit finish before it reports
AFTER_S = 5.0  # the class goes on this long after an attack: everyone's next move sees what it left
COLUMNS = ["attack", "what the attacker got", "Explore p95", "Compare p95", "training", "server RSS MiB: before / peak / after", "others saw"]


async def class_alone(target: Target, counts: Counts) -> Outcome:
    await asyncio.sleep(counts.baseline_s)
    return Outcome("–")


# The class alone, then the attacks that change nothing another one measures (one server for them all),
# then each of the others against a server of its own.
BASELINE = Attack("baseline", "none: the class alone for {c.baseline_s:.0f} s", class_alone, fresh=False)
ATTACKS = (
    Attack("url-overflow", "index=1e400, lab_a=inf, c_n=1e400, c_seed= a {c.seed_digits:,}-digit number", hostile_pages.url_overflow, fresh=False),
    Attack("markdown-echo", "thresh=[Log in again](http://x), index=![x](http://host/t.png)", hostile_pages.markdown_echo, fresh=False),
    Attack("unknown-choices", "ckpt, device, source, view, layer, c_view set to values no list offers", hostile_pages.unknown_choices, fresh=False),
    Attack("odd-shape", "an uploaded checkpoint made for input_size 8 or 256", hostile_pages.odd_shape, fresh=False),
    Attack("start-flood", "{c.flood} sessions each press Start on the Train page", hostile_training.start_flood),
    Attack("endless-run", "a run of 1000 epochs with no time limit", hostile_training.endless_run),
    Attack("big-compare", "/compare?c_n={c.compare_digits}&steps={c.compare_steps} with 10 thresholds and a new seed", hostile_pages.big_compare),
    Attack("session-churn", "{c.churn} Explore sessions at num_steps 50 that move thresh and close", hostile_pages.session_churn),
    Attack("big-upload", "a {c.upload_mb} MB body sent to the upload URL", hostile_pages.big_upload),
    Attack("rude-checkpoint", "a run saved as rude_word_for_teacher", hostile_training.rude_checkpoint),
    Attack("save-race", "{c.racers} saves of one name at the same moment", hostile_training.save_race),
    Attack("redis-enqueue", 'enqueue("os.system", ...) from outside, against the documented set-up', hostile_redis.redis_enqueue, needs="redis"),
    Attack("redis-restart", "Redis restarted while a sae worker trains", hostile_redis.redis_restart, needs="redis"),
)


# --------------------------------------------------------------------------- the server and the class


@contextlib.contextmanager
def target_for(attack: Attack, args, folder: Path):
    """The server to attack: the one at ``--url``, else a fresh one (with Redis and a worker if the attack needs them)."""
    if args.url:
        wait_healthy(args.url)
        yield Target(args.url, args.pid or server_pid(urlparse(args.url).port or 80), workdir=folder)
        return
    env = {"SAE_USER_CHECKPOINTS": str(folder / "user")}
    with contextlib.ExitStack() as stack:
        service = worker = worker_log = None
        if attack.needs == "redis":
            service, worker, worker_log = stack.enter_context(hostile_redis.queue_setup(folder, args.redis_password, args.app_dir))
            env.update(SAE_REDIS_URL=service.url, SAE_QUEUE_KEY=hostile_redis.QUEUE_KEY)
        base_url, process = stack.enter_context(started_servers(args.app_dir, env=env, log=folder / "server.log"))
        yield Target(base_url, process.pid, folder / "user", folder, service, worker, worker_log)


def why_skipped(attack: Attack, args) -> str | None:
    if attack.needs != "redis":
        return None
    if args.url:
        return "skipped: needs a server this benchmark starts"
    if not args.redis:
        return "skipped: run with --redis"
    if not hostile_redis.redis_available():
        return f"skipped: no {hostile_redis.REDIS_BINARY} binary"
    return None


class TheClass:
    """The well-behaved students (``python -m benchmarks.hostile_class``), a process of their own."""

    def __init__(self, process: asyncio.subprocess.Process):
        self.process = process

    @classmethod
    async def start(cls, base_url: str, counts: Counts, args) -> TheClass:
        command = [sys.executable, "-m", "benchmarks.hostile_class", "--url", base_url, "--explorers", str(counts.explorers)]
        command += ["--seed", str(args.seed)] + (["--train"] if args.train else [])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
        process = await asyncio.create_subprocess_exec(*command, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            ready = await asyncio.wait_for(process.stdout.readline(), CLASS_READY_S)
        except TimeoutError:
            ready = b"no answer"
        if ready.strip() != b"ready":
            process.kill()
            await process.wait()
            raise RuntimeError(f"the class did not start: {ready.decode(errors='replace')!r}")
        return cls(process)

    def count_from_now(self) -> None:
        self.process.stdin.write(b"start\n")

    async def finish(self) -> dict:
        """Stop the class and read what it measured ({} if it cannot say)."""
        self.process.stdin.close()
        try:
            out = await asyncio.wait_for(self.process.stdout.read(), CLASS_FINISH_S)
        except TimeoutError:
            self.process.kill()
            out = b""
        await self.process.wait()
        lines = out.decode(errors="replace").strip().splitlines()
        with contextlib.suppress(json.JSONDecodeError, IndexError):
            return json.loads(lines[-1])
        return {}


async def warm(base_url: str) -> None:
    """One visit of each page the class uses, so a cold start is nobody's figure."""
    for page in ("explore", "compare", "train"):
        async with Session(base_url, page) as s:
            await s.rerun(timeout=300)


# --------------------------------------------------------------------------- one row


def p95_cell(figures: dict) -> str:
    if not figures:  # the class did not run
        return "–"
    ok, not_ok = figures.get("ok_s", []), figures.get("not_ok", [])
    cell = f"{percentile([s * 1000 for s in ok], 95):,.0f} ms (n {len(ok)})" if ok else "no run finished"
    if not_ok:
        cell += f", {len(not_ok)} not ok ({', '.join(sorted(set(not_ok)))})"
    return cell


def training_cell(training: dict, seconds: float, args) -> str:
    if not args.train:
        return "–"
    if training.get("state") in ("running", "ended"):
        return f"{training['state']}, {training.get('steps_counted', 0):,} steps in the {seconds:.0f} s"
    said = training.get("start") or []
    return f"{training.get('state', 'not started')}" + (f": “{quote(said[0], 80)}”" if said else "")


def memory_cell(before: float | None, peak: float | None, after: float | None, later: str) -> str:
    shown = " / ".join(f"{v:,.0f}" if v is not None else "?" for v in (before, peak, after))
    return shown + (f"; {later}" if later else "")


def row(attack: Attack, counts: Counts, outcome: Outcome, seen: dict, memory: str, args) -> list[str]:
    others = outcome.others + seen.get("sightings", [])
    return [
        f"**{attack.name}**: {attack.what.format(c=counts)}",
        outcome.attacker,
        p95_cell(seen.get("explore", {})),
        p95_cell(seen.get("compare", {})),
        training_cell(seen.get("training", {}), seen.get("seconds", 0.0), args),
        memory,
        "; ".join(others) or ("nothing changed" if seen else "–"),  # {}: the class could not say
    ]


async def attacked(attack: Attack, target: Target, counts: Counts) -> Outcome:
    try:
        return await asyncio.wait_for(attack.run(target, counts), ATTACK_LIMIT_S)
    except TimeoutError:
        return Outcome(f"not finished after {ATTACK_LIMIT_S:.0f} s")
    except Exception as error:  # noqa: BLE001 - one attack's failure is its row, the others still run
        return Outcome(f"the benchmark's attack failed: {type(error).__name__}: {quote(str(error))}")


async def run_on(target: Target, attack: Attack, counts: Counts, args) -> list[str]:
    """The class on the target; the attack beside it; one row."""
    the_class = await TheClass.start(target.base_url, counts, args)
    before, peaks, stop = rss_mib(target.pid), {}, asyncio.Event()
    sampler = asyncio.create_task(sample(target.pid, peaks, stop))
    the_class.count_from_now()
    began = time.perf_counter()
    outcome = await attacked(attack, target, counts)
    await asyncio.sleep(max(AFTER_S, counts.min_window_s - (time.perf_counter() - began)))
    seen = await the_class.finish()
    after = rss_mib(target.pid)
    stop.set()
    await sampler
    peak = max((v for v in (before, peaks.get("rss_mib")) if v is not None), default=None)
    return row(attack, counts, outcome, seen, memory_cell(before, peak, after, outcome.later), args)


async def open_server(servers: contextlib.ExitStack, attack: Attack, args) -> Target:
    """A warm server for ``attack`` (and the attacks after it that may share it), closed with ``servers``."""
    folder = Path(servers.enter_context(tempfile.TemporaryDirectory(prefix="sae_hostile_")))
    target = servers.enter_context(target_for(attack, args, folder))
    await warm(target.base_url)
    return target


async def run_plan(plan: list[Attack], counts: Counts, args) -> list[list[str]]:
    """Each attack in turn, printing its row; a fresh, warm server whenever an attack needs one."""
    rows, shared = [], None
    with contextlib.ExitStack() as servers:
        for attack in plan:
            skipped, done = why_skipped(attack, args), len(rows)
            try:
                if skipped:
                    rows.append(row(attack, counts, Outcome(skipped), {}, "–", args))
                    continue
                if attack.fresh or shared is None:
                    servers.close()
                    shared = await open_server(servers, attack, args)
                rows.append(await run_on(shared, attack, counts, args))
            except (RuntimeError, OSError, TimeoutError) as error:  # no server, or no class: this row says so
                rows.append(row(attack, counts, Outcome(f"not run: {type(error).__name__}: {quote(str(error))}"), {}, "–", args))
                shared = None
            finally:
                shared = None if attack.fresh else shared
                if len(rows) > done:
                    print(markdown_table(COLUMNS, [rows[-1]]).splitlines()[-1], flush=True)
    return rows


# --------------------------------------------------------------------------- the run


def machine() -> tuple[str, str]:
    """The CPU's model name and the load average now."""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        lscpu = ""
    return cpu_model(lscpu), " ".join(f"{v:.2f}" for v in os.getloadavg())


def header(args, counts: Counts, load_before: str) -> str:
    cpu, _ = machine()
    against = (
        f"the server at {args.url}"
        if args.url
        else "servers it started (`streamlit run app.py`): one for the class alone and the attacks that change nothing, one for each other"
    )
    students = f"{counts.explorers} explorers moving thresh every 3 ± 1 s, one Compare visit at the defaults every 5 s"
    return (
        f"Hostile class, {time.strftime('%Y-%m-%d')}, {cpu} ({os.cpu_count()} cores), `python -m benchmarks.hostile {' '.join(args.argv)}`".rstrip()
        + f"\n\nAgainst {against}; the class: {students}{', one One-minute training run' if args.train else ''}. "
        f"Load average before: {load_before}."
    )


async def main(args) -> None:
    counts = QUICK if args.quick else Counts()
    if args.explorers is not None:
        counts = replace(counts, explorers=args.explorers)
    chosen = [a for a in ATTACKS if not args.attack or a.name in args.attack]
    plan = ([] if args.no_baseline else [BASELINE]) + chosen
    _, load_before = machine()
    print(header(args, counts, load_before) + "\n", flush=True)
    print(markdown_table(COLUMNS, []), flush=True)
    rows = await run_plan(plan, counts, args)
    print("\n" + header(args, counts, load_before) + f" Load average after: {machine()[1]}.\n")
    print(markdown_table(COLUMNS, rows))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--url", help="attack a running server (loopback only) instead of starting one per attack")
    p.add_argument("--pid", type=int, help="with --url: the server's pid (default: whoever listens on the port)")
    p.add_argument("--attack", action="append", choices=[a.name for a in ATTACKS], help="only this attack (repeatable)")
    p.add_argument("--list", action="store_true", help="list the attacks and exit")
    p.add_argument("--quick", action="store_true", help="tiny counts: a smoke run, not a measurement")
    p.add_argument("--train", action="store_true", help="the class also trains one 'One minute' run during each attack")
    p.add_argument("--redis", action="store_true", help="also the queue attacks: Redis, a sae worker and the app on it")
    p.add_argument("--redis-password", help="start Redis with this password (the documented set-up's, if it has one)")
    p.add_argument("--explorers", type=int, help="students moving thresh (default 10; 2 with --quick)")
    p.add_argument("--no-baseline", action="store_true", help="skip the class-alone row")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--app-dir",
        type=Path,
        default=ROOT,
        help="serve the app (and run `sae worker`) from this checkout, e.g. an older commit's, to measure it the same way",
    )
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.explorers is not None:
        args.explorers = max(0, min(args.explorers, 60))
    return args


def list_attacks() -> None:
    for attack in (BASELINE, *ATTACKS):
        needs = f"  (needs {attack.needs})" if attack.needs else ""
        print(f"{attack.name:16s} {attack.what.format(c=Counts())}{needs}")


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.list:
        list_attacks()
    else:
        asyncio.run(main(arguments))
