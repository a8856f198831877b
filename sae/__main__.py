"""Command line: ``python -m sae train | eval | bench``."""

from __future__ import annotations

import argparse
import shlex
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path


def _add_model_args(p):
    g = p.add_argument_group("model")
    g.add_argument("--latent-dim", type=int, default=32)
    g.add_argument("--beta", type=float, default=0.5)
    g.add_argument("--thresh", type=float, default=1.0)
    g.add_argument("--num-steps", type=int, default=5)
    g.add_argument("--surrogate", choices=("atan", "fast_sigmoid"), default="atan")


def _add_train_args(p):
    from sae.recipes import RECIPES

    g = p.add_argument_group("training")
    g.add_argument("--recipe", choices=sorted(RECIPES), default="fast",
                   help="starting settings: 'tutorial' is the tutorial's exact recipe; the flags below override it")
    g.add_argument("--epochs", type=int, help="epochs to run; given without --time-budget, the recipe's time limit is dropped")
    g.add_argument("--time-budget", type=float, help="stop after this many seconds of training")
    g.add_argument("--lr", type=float)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--loss", choices=("last", "every"))
    g.add_argument("--schedule", choices=("constant", "cosine"))
    g.add_argument("--warmup-steps", type=int)
    g.add_argument("--train-subset", type=int)
    g.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="fuse the LIF updates with torch.compile: same results, faster after a one-off compile of seconds")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="auto", help="cpu, cuda, mps or auto")
    g.add_argument("--out", type=Path, help="checkpoint to write (default: user_checkpoints/<time>.pt)")


def cmd_train(args) -> int:
    from tqdm import tqdm

    from sae.checkpoints import USER_DIR, save_checkpoint
    from sae.data import mnist_tensors
    from sae.model import SAEConfig
    from sae.recipes import make_train_config
    from sae.train import BatchEnd, EpochEnd, Evaluation, Finished, final_metrics, train

    model_config = SAEConfig(latent_dim=args.latent_dim, beta=args.beta, thresh=args.thresh,
                             num_steps=args.num_steps, surrogate=args.surrogate)
    overrides = {k: getattr(args, k) for k in ("epochs", "time_budget", "lr", "batch_size", "loss", "schedule",
                                               "warmup_steps", "train_subset", "compile")}
    cfg = make_train_config(args.recipe, seed=args.seed, device=args.device, **overrides)
    if args.epochs is not None and args.time_budget is None:
        cfg = replace(cfg, time_budget=None)  # "--epochs 1" means one whole epoch
    train_x, _ = mnist_tensors(train=True)
    test_x, _ = mnist_tensors(train=False)
    print(f"training {model_config} with {cfg}", flush=True)
    stop = threading.Event()
    bar = tqdm(total=1000, unit="‰", bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}")
    finished = None
    events = train(model_config, cfg, train_x, test_x, stop=stop)
    try:
        for event in events:
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
            if isinstance(event, Finished):
                finished = event
    bar.close()
    model = finished.model
    t0 = time.perf_counter()
    metrics = final_metrics(model, test_x, finished)
    test_mse = metrics["test_mse"]
    print(f"finished ({finished.reason}) after {finished.steps} steps, {finished.images_seen} images, "
          f"{finished.elapsed:.1f} s of training ({finished.images_seen / max(finished.elapsed, 1e-9):.0f} img/s)")
    print(f"test MSE on all {len(test_x)} test images: {test_mse:.4f}  (evaluated in {time.perf_counter() - t0:.1f} s)")
    if cfg.time_budget:
        verdict = "reaches" if test_mse <= 0.05 else "does NOT reach"
        print(f"{verdict} the tutorial's 10-epoch result (test MSE <= 0.05) within {cfg.time_budget:.0f} s of training")
    out = args.out or USER_DIR / time.strftime("sae_%Y%m%d_%H%M%S.pt")
    path = save_checkpoint(out, model.cpu(), metrics=metrics, history=finished.history,
                           provenance={"command": "python -m sae " + shlex.join(args.argv), "seed": cfg.seed,
                                       "train_config": cfg.to_dict()})
    print(f"saved {path}")
    return 0


def cmd_eval(args) -> int:
    from sae.checkpoints import default_checkpoint_path, load_checkpoint
    from sae.data import mnist_tensors
    from sae.devices import resolve_device
    from sae.train import evaluate

    ckpt = load_checkpoint(args.checkpoint or default_checkpoint_path())
    device = resolve_device(args.device)
    model = ckpt.model.to(device)
    test_x, _ = mnist_tensors(train=False)
    overrides = {k: getattr(args, k) for k in ("thresh", "beta", "num_steps") if getattr(args, k) is not None}
    t0 = time.perf_counter()
    test_mse, rates = evaluate(model, test_x.to(device), **overrides)
    seconds = time.perf_counter() - t0
    print(f"checkpoint {args.checkpoint or default_checkpoint_path()}  config {ckpt.config}")
    if overrides:
        print(f"inference overrides: {overrides}")
    print(f"test MSE on all {len(test_x)} test images: {test_mse:.5f}  ({seconds:.1f} s on {device})")
    print("spike rate per layer (fraction of neuron-steps that fired):")
    for name, rate in rates.items():
        print(f"  {name:7s} {rate:.4f}")
    return 0


def cmd_bench(args) -> int:
    from sae.bench import run_bench

    return run_bench(args)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sae", description="Spiking autoencoder: train, evaluate, benchmark.")
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
    p = sub.add_parser("bench", help="the tutorial's code against this project's engine, side by side")
    p.add_argument("--batches", type=int, default=6, help="timed batches per measurement")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_bench)
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
