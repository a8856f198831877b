"""The Latent lab's teaching prose: what to notice in each figure, with the numbers of the moment."""

from __future__ import annotations

import numpy as np

from sae.analysis.energy import PJ_PER_AC, PJ_PER_MAC, SOURCE

INTRO = (
    "The decoder never sees the image: all it gets is this grid of 0s and 1s, one row per latent neuron, one "
    "column per time step. Edit it cell by cell and ask the decoder what it makes of your code: *what does each "
    "spike mean?*"
)
VIEWS = ("Edit the code", "What each neuron draws", "Between two digits", "The map of codes")


def editor(edit) -> str:
    """``edit``: a ``sae.analysis.latent.EditJudged``."""
    cells, looks_like, own_looks_like = edit.cells, edit.looks_like, edit.own_looks_like
    if cells == 0:
        return (
            f"This is the digit's own code: decoded, it gives the reconstruction (MSE {edit.own_mse:.4f}). Click a "
            "cell to flip one spike. Most single flips change little, because the decoder adds up every step; "
            "silencing a busy neuron or firing a quiet one at every step can change the digit's shape."
        )
    shape = (
        f"it now looks most like an average {looks_like} (it looked like an average {own_looks_like})"
        if looks_like != own_looks_like
        else f"it still looks most like an average {looks_like}"
    )
    return (
        f"{cells} cell{'s' if cells != 1 else ''} edited: the decoded image's MSE against the input is "
        f"{edit.mse:.4f} (the own code's: {edit.own_mse:.4f}), and {shape}. Restore brings the encoder's code back."
    )


def atlas(effect: np.ndarray, added: np.ndarray, turns: dict[int, int], own_class: int) -> str:
    quiet = int(np.argmin(effect))
    loud = int(np.argmax(effect))
    verb = "Adding" if added[loud] else "Removing"
    text = (
        f"Left: what each neuron alone makes the decoder draw. Right: the change each one makes to this digit: "
        f"removed if it fired, added at every step if it was silent. Neuron {quiet} changes almost nothing "
        f"(mean squared change {effect[quiet]:.4f}): the decoder barely uses it for this digit. {verb} neuron "
        f"{loud} changes the most ({effect[loud]:.4f})."
    )
    if turns:
        listed = ", ".join(f"{n} → {c}" for n, c in list(turns.items())[:6])
        text += f" Toggling these turns the picture from an average {own_class} into another digit's average (neuron → class): {listed}."
    return text


def blend(differing: int, a_label: str, b_label: str, switch_at: int | None) -> str:
    text = (
        f"From {a_label} (left) to {b_label} (right) in 8 stages. Their codes differ in {differing} neurons; "
        "stage s takes B's whole spike train for the first s/7 of them, those that differ most first, and "
        "keeps A's for the rest. Deterministic, so a shared link shows the same row, and every stage is made "
        "of spike trains one of the two digits really produced (a random rate-coded mix would invent timing "
        "neither had, and need a seed). The middle images answer codes no image produced."
    )
    if switch_at is not None:
        text += f" The picture first looks more like B than like A at stage {switch_at}."
    return text


def code_map(cmap, settings) -> str:
    """``settings``: the sidebar's NeuronSettings (the map's own are ``cmap.settings``)."""
    drawn = cmap.settings
    text = (
        f"Each dot is one of the {len(cmap.labels):,} test images: its latent spike counts (spikes per neuron "
        f"over {drawn.num_steps} steps) projected on their two main directions (PCA; "
        f"{100 * cmap.explained.sum():.0f}% of the variance). Digits of one class land together; where two "
        "clouds overlap the code confuses them. Hover for the digit, click a dot to open it in the editor. "
        "★ is digit A, ✕ your edited code."
    )
    if settings != drawn:
        text += (
            f" The map is drawn once per checkpoint at its own settings (thresh {drawn.thresh:g}, beta "
            f"{drawn.beta:g}, {drawn.num_steps} steps); ★ and ✕ are at yours (thresh {settings.thresh:g}, beta {settings.beta:g}, "
            f"{settings.num_steps} steps), rescaled to {drawn.num_steps} steps."
        )
    return text


def energy(report, mse: float | None = None) -> str:
    ratio = report.dense_joules_one_pass / max(report.spiking_joules, 1e-30)
    conv1 = next(r for r in report.layers if r.kind == "MAC")
    text = (
        f"Each input spike costs one accumulate per connection it reaches ({PJ_PER_AC} pJ each); the first "
        f"conv sees analog pixels and multiplies ({PJ_PER_MAC} pJ per multiply-accumulate, every step: "
        f"{conv1.ops:,}). In all {report.synops:,} spike-driven accumulates: the spiking network's compute "
        f"costs about {report.spiking_joules * 1e9:,.0f} nJ, {ratio:.1f}x less than one pass of the same "
        f"network without spikes ({report.dense_joules_one_pass * 1e9:,.0f} nJ) and "
        f"{report.dense_joules_all_steps / max(report.spiking_joules, 1e-30):.1f}x less than running it "
        f"{report.num_steps} times. Fewer spikes, less energy, blurrier digit: raise thresh and watch the "
        "accumulates fall and the image fade"
    )
    text += f" (MSE now {mse:.4f})." if mse is not None else "."
    return text + (
        f" A compute-only estimate at 45 nm ({SOURCE}): memory access, often the larger cost, the "
        "membrane updates and the BatchNorms (folded into the weights) are left out."
    )
