"""Print the model-card table of the shipped checkpoints from what each file records.

.venv/bin/python -m benchmarks.model_card
"""

from sae.io.checkpoints import SHIPPED_DIR, load_checkpoint
from sae.model import SPIKING_LAYERS


def main():
    layers = SPIKING_LAYERS
    print("| file | num_steps | thresh | test MSE (10,000) | " + " | ".join(layers) + " | steps | train s | command |")
    print("|---" * (len(layers) + 7) + "|")
    for path in sorted(SHIPPED_DIR.glob("*.pt")):
        ckpt = load_checkpoint(path)
        m, c = ckpt.metrics, ckpt.config
        rates = " | ".join(f"{m['spike_rates'][n]:.3f}" for n in layers)
        print(
            f"| {path.name} | {c.num_steps} | {c.thresh:g} | {m['test_mse']:.4f} | {rates} | {m.get('steps', '')} | "
            f"{m.get('train_seconds', 0):.0f} | {commands(ckpt.provenance)} |"
        )


def commands(provenance: dict) -> str:
    """The command that made a file, after the commands of the checkpoints it started from (``--init``)."""
    chain, record = [], provenance
    while record:
        chain.append(f"`{record.get('command', '')}`")
        record = record.get("init")
    return ", then ".join(reversed(chain))


if __name__ == "__main__":
    main()
