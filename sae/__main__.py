"""Command line: ``sae train | eval | worker`` (the speed benchmarks: ``python -m benchmarks.engine``)."""

from __future__ import annotations

import argparse
import shlex
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_model_args(p):
    """One flag per SAEConfig field a user would change; defaults and choices from the model itself."""
    from sae import limits
    from sae.model import SAEConfig

    g = p.add_argument_group("model")
    defaults = SAEConfig()
    for name in ("latent_dim", "beta", "thresh", "num_steps"):
        g.add_argument(
            _flag(name),
            type=type(getattr(defaults, name)),
            default=getattr(defaults, name),
            help=f"{limits.LIMITS[name].describe()} (default {getattr(defaults, name)})",
        )
    g.add_argument("--surrogate", choices=limits.SURROGATES, default=defaults.surrogate)


# TrainConfig fields with a flag: given, they replace the recipe's value.
TRAIN_FLAGS = ("epochs", "time_budget", "lr", "batch_size", "loss", "schedule", "warmup_steps", "train_subset")


def _add_train_args(p):
    from dataclasses import fields

    from sae import limits
    from sae.training.loop import TrainConfig
    from sae.training.recipes import RECIPES

    g = p.add_argument_group("training")
    g.add_argument(
        "--recipe",
        choices=sorted(RECIPES),
        default="fast",
        help="starting settings: 'tutorial' is the tutorial's exact recipe; the flags below override it",
    )
    choices = {"loss": limits.LOSSES, "schedule": limits.SCHEDULES, "engine": limits.ENGINES}
    types = {f.name: f.type for f in fields(TrainConfig)}
    for name in TRAIN_FLAGS:
        kind = float if "float" in str(types[name]) else int if "int" in str(types[name]) else str
        hint = limits.LIMITS[name].describe() if name in limits.LIMITS else None
        g.add_argument(_flag(name), type=kind, choices=choices.get(name), help=hint)
    g.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="fuse the LIF updates with torch.compile (sae.engine): faster after a one-off compile, cached on disk",
    )
    g.add_argument(
        "--calibrate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="before the first step, scale each layer to fire at a target rate (sae.training.calibration)",
    )
    g.add_argument("--seed", type=int, default=TrainConfig.seed)
    g.add_argument("--device", default="auto", help=f"{', '.join(limits.DEVICES)} or auto")
    g.add_argument("--out", type=Path, help="checkpoint to write (default: user_checkpoints/<time>.pt)")
    g.add_argument("--init", type=Path, help="start from this checkpoint's weights (a warm restart); the model flags must match its settings")
    p.epilog = "--epochs given without --time-budget drops the recipe's time limit"


def cmd_train(args) -> int:
    from tqdm import tqdm

    from sae.data.mnist import mnist_tensors
    from sae.io.checkpoints import USER_DIR, load_checkpoint, save_checkpoint
    from sae.model import SAEConfig
    from sae.training.loop import BatchEnd, EpochEnd, Evaluation, Finished, History, final_metrics, train
    from sae.training.recipes import make_train_config

    model_config = SAEConfig(latent_dim=args.latent_dim, beta=args.beta, thresh=args.thresh, num_steps=args.num_steps, surrogate=args.surrogate)
    start, init_provenance = None, None
    if args.init:
        init = load_checkpoint(args.init)
        if init.config != model_config:
            raise ValueError(f"--init {args.init} has {init.config}; give the same model flags ({model_config} asked)")
        # The chain of warm restarts stays on record: the start's own start comes along.
        start, init_provenance = init.model, {"path": str(args.init), "command": init.provenance.get("command")}
        if "init" in init.provenance:
            init_provenance["init"] = init.provenance["init"]
    overrides = {k: getattr(args, k) for k in TRAIN_FLAGS + ("compile", "calibrate")}
    cfg = make_train_config(args.recipe, seed=args.seed, device=args.device, **overrides)
    if args.epochs is not None and args.time_budget is None:
        cfg = replace(cfg, time_budget=None)  # "--epochs 1" means one whole epoch
    train_x, _ = mnist_tensors(train=True)
    test_x, _ = mnist_tensors(train=False)
    print(f"training {model_config} with {cfg}", flush=True)
    stop = threading.Event()
    bar = tqdm(total=1000, unit="‰", bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}")
    finished, history = None, History()
    events = train(model_config, cfg, train_x, test_x, stop=stop, model=start)
    try:
        for event in events:
            history.record(event)
            if isinstance(event, BatchEnd):
                bar.n = int(event.progress * 1000)
                bar.set_postfix_str(f"step {event.step} loss {event.loss:.4f} {event.images_per_s:.0f} img/s")
            elif isinstance(event, Evaluation):
                bar.write(f"  step {event.step:5d}  held-out test MSE {event.test_loss:.4f}  ({event.elapsed:.0f} s)")
            elif isinstance(event, EpochEnd):
                bar.write(f"epoch {event.epoch}: train MSE {event.train_loss:.4f}, held-out test MSE {event.test_loss:.4f}")
            elif isinstance(event, Finished):
                finished = event
    except KeyboardInterrupt:
        stop.set()  # the generator stops at the next batch and still yields Finished
        for event in events:
            history.record(event)
            if isinstance(event, Finished):
                finished = event
    bar.close()
    model = finished.model
    t0 = time.perf_counter()
    metrics = final_metrics(model, test_x, finished)
    test_mse = metrics["test_mse"]
    print(
        f"finished ({finished.reason}) after {finished.steps} steps, {finished.images_seen} images, "
        f"{finished.elapsed:.1f} s of training ({finished.images_seen / max(finished.elapsed, 1e-9):.0f} img/s)"
    )
    print(f"test MSE on all {len(test_x)} test images: {test_mse:.4f}  (evaluated in {time.perf_counter() - t0:.1f} s)")
    if cfg.time_budget:
        verdict = "reaches" if test_mse <= 0.05 else "does NOT reach"
        print(f"{verdict} the tutorial's 10-epoch result (test MSE <= 0.05) within {cfg.time_budget:.0f} s of training")
    out = args.out or USER_DIR / time.strftime("sae_%Y%m%d_%H%M%S.pt")
    path = save_checkpoint(
        out,
        model.cpu(),
        metrics=metrics,
        history=history.as_dict(),
        provenance={
            "command": "python -m sae " + shlex.join(args.argv),
            "seed": cfg.seed,
            "train_config": cfg.to_dict(),
            **({"init": init_provenance} if init_provenance else {}),
        },
    )
    print(f"saved {path}")
    return 0


def cmd_eval(args) -> int:
    from sae.data.mnist import mnist_tensors
    from sae.devices import resolve_device
    from sae.io.checkpoints import default_checkpoint_path, load_checkpoint
    from sae.training.loop import evaluate

    ckpt = load_checkpoint(args.checkpoint or default_checkpoint_path())
    device = resolve_device(args.device)
    model = ckpt.model.to(device)
    test_x, _ = mnist_tensors(train=False)
    overrides = {k: getattr(args, k) for k in ("thresh", "beta", "num_steps") if getattr(args, k) is not None}
    settings = ckpt.config.neuron_settings(**overrides) if overrides else None
    t0 = time.perf_counter()
    test_mse, rates = evaluate(model, test_x.to(device), settings=settings)
    seconds = time.perf_counter() - t0
    print(f"checkpoint {args.checkpoint or default_checkpoint_path()}  config {ckpt.config}")
    if overrides:
        print(f"inference overrides: {overrides}")
    print(f"test MSE on all {len(test_x)} test images: {test_mse:.5f}  ({seconds:.1f} s on {device})")
    print("spike rate per layer (fraction of neuron-steps that fired):")
    for name, rate in rates.items():
        print(f"  {name:7s} {rate:.4f}")
    return 0


WORKER_HELP = {
    "redis_url": "the Redis that the app's SAE_REDIS_URL names, with its password (default: $SAE_REDIS_URL, else redis://localhost:6379/0)",
    "queue": "default: %(default)s",
    "device": "cpu, cuda, mps or auto: every run this worker takes trains here (default: %(default)s)",
    "nice": "added CPU niceness, so an app on the same machine stays quick (default: %(default)s)",
    "threads": "torch threads; 0: one per core but one, left to the pages (default: %(default)s)",
    "name": "default: host.pid.random",
    "burst": "quit when the queue is empty",
}


def _add_worker_args(p):
    """One flag per WorkerConfig field, its default from the dataclass."""
    from dataclasses import fields

    from sae.runs.queue_worker import WorkerConfig

    defaults = WorkerConfig()
    for f in fields(WorkerConfig):
        value = getattr(defaults, f.name)
        if isinstance(value, bool):
            p.add_argument(_flag(f.name), action="store_true", default=value, help=WORKER_HELP[f.name])
        else:
            p.add_argument(_flag(f.name), type=type(value) if value is not None else str, default=value, help=WORKER_HELP[f.name])


def cmd_worker(args) -> int:
    from dataclasses import fields

    from sae.runs.queue_worker import WorkerConfig, serve

    return serve(WorkerConfig(**{f.name: getattr(args, f.name) for f in fields(WorkerConfig)}))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="sae", description="Spiking autoencoder: train and evaluate.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train a spiking autoencoder on MNIST and save a checkpoint")
    _add_model_args(p)
    _add_train_args(p)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("eval", help="test MSE on all 10,000 test images and spike rate per layer")
    p.add_argument("--checkpoint", type=Path)
    p.add_argument("--device", default="cpu")
    p.add_argument("--thresh", type=float)
    p.add_argument("--beta", type=float)
    p.add_argument("--num-steps", type=int)
    p.set_defaults(func=cmd_eval)
    p = sub.add_parser(
        "worker",
        help="train the runs of a Redis queue (the app with SAE_REDIS_URL set sends them)",
        description="Trains the runs the app sends through Redis. Needs SAE_QUEUE_KEY, the app's secret (docs/classroom.md); "
        "the Redis URL (with its password) is best given as $SAE_REDIS_URL, out of sight of other users' process lists.",
    )
    _add_worker_args(p)
    p.set_defaults(func=cmd_worker)
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv  # recorded in the checkpoint's provenance
    try:
        return args.func(args)
    except (ValueError, RuntimeError) as error:  # our errors carry a one-line message
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
