"""The teaching prose of the pages: what to look for in each figure.

Kept apart from the layout so a page reads as a screen, and a teacher can
reword an explanation without touching code.
"""

from sae import limits
from sae.model import NeuronSettings, layers_that_cannot_fire

# --------------------------------------------------------------------------- Compare

COMPARE_INTRO = (
    "What do **thresh** and **num_steps** do? Each question has its own tab: the same trained model run at "
    "other settings, next to models trained with them. The link in the address bar reproduces this view."
)

QUESTIONS = {
    "thresh": {
        "intro": "A neuron fires when its membrane passes the threshold, then drops by it. **Raise thresh and every "
        "layer fires less**; too high and the latent code goes silent, so the decoder has nothing to rebuild "
        "from. Too low and everything fires, and the code stops saying which digit it saw.",
        "grid": "Each column is the same trained model with another threshold. As thresh rises, fewer latent spikes "
        "reach the decoder and the digits fade; far below the trained value too many neurons fire and the "
        "strokes smear.",
        "lines": "Left: the error is usually lowest near the threshold the model was trained with. Right: spike "
        "rates fall as thresh rises, layer after layer: the one-line summary of what thresh does.",
        "rasters": "Each block is the latent code of the first digit (neurons down, steps across). A higher "
        "threshold leaves fewer black cells: fewer spikes carry the same image.",
        "default": (0.25, 0.5, 1.0, 1.5, 2.0, 3.0),
        "options": limits.THRESH_CHOICES,
    },
    "num_steps": {
        "intro": "The image is shown `num_steps` times; each step adds one more set of latent spikes, and the output "
        "is read after the last. **One step gives a single binary snapshot; more steps let rates and timing "
        "carry detail**, at a cost in time. The model was trained with one number of steps: far from it, "
        "the decoder's membrane is read at a moment it never learned.",
        "grid": "Each column runs the same model for more steps. With one step the code is a single binary vector "
        "and the output is faint; the strokes build up as steps are added, up to about the number the model "
        "was trained with. Past it the output can overshoot: the decoder never learned to be read that late.",
        "lines": "Left: the error falls fastest over the first few steps; compare where it bottoms out with the "
        "trained num_steps. Right: the rate per step settles after the first steps, so more steps mean more "
        "spikes in total (and more time), not a denser code.",
        "rasters": "The latent code of the first digit for each num_steps. Each longer run starts exactly like the "
        "shorter ones (the network is causal) and adds columns.",
        "default": (1, 2, 3, 5, 10, 20),
        "options": limits.NUM_STEPS_CHOICES,
    },
}

TRAINED_VS_AFTER = (
    "Solid: a model trained with that setting. Dashed: the model trained at num_steps 5, thresh 1, switched "
    "to it afterwards. Where the lines part, the network has adapted its weights to the setting: changing a "
    "setting after training is not the same as training with it."
)
TRAINED_TABLE = (
    "Test MSE (model card): measured on all 10,000 test images when the checkpoint was made. The models were trained "
    "the same way, one full epoch (1,875 steps of 32 images) from a calibrated start, so the differences are the "
    "settings', not the training's; the thresh 2 model is still an older, shorter run (the model card says why). "
    "The other columns are on the digits above."
)
GRID_INTRO = "Every pair of the values below, on the same model and digits: the whole picture in one sweep."
GRID = {
    "mse": "Dark is good. Along a row (one threshold) the error usually falls as steps are added; down a column "
    "it is lowest near the threshold the model was trained with.",
    "recon": "The same digit for every pair: thresh down, num_steps across.",
    "rates": "Share of (neuron, step) pairs that fired, per layer (rows, in signal order) and setting (columns). "
    "Higher thresholds darken whole columns: fewer spikes everywhere.",
    "rasters": "The first digit's latent code for every pair. Across a row the raster only grows: later steps never "
    "change earlier ones. Down a column it thins out.",
    "lines": "Each line holds the other parameter fixed. Threshold up: fewer spikes on every line. Steps up: the "
    "mean rate per step hardly moves, while the error changes most over the first few steps.",
}
AB_INTRO = (
    "Two settings, one digit, every figure of the Explore page side by side; the charts first show "
    "**what changed** (red: more in B, blue: more in A)."
)
AB = {
    "images": "The same digit rebuilt under A and B on one grey scale; the last panel is B minus A. Colour shows "
    "exactly where the settings disagree.",
    "steps": "The reconstruction after each step, A above B. With one step the output is a single snapshot; with more it builds up.",
    "raster": "Grey: both settings fire. Blue: only A. Red: only B. A higher threshold in B leaves mostly blue: spikes that A had and B lost.",
    "rates": "Firing rate per layer under A and B; the numbers are B − A in percentage points.",
    "layer": "Spikes per neuron over all steps, feature maps tiled as on the Explore page; the last panel is B − A.",
}

# --------------------------------------------------------------------------- Train

TRAIN_INTRO = (
    "Pick a preset (or your own settings), press Start and watch the loss fall and the reconstructions "
    "sharpen. The run goes on while you look at other pages; it is yours alone, and it never changes the "
    "model other people are exploring."
)
PRESET_HELP = {
    "One minute": "this project's fast recipe, 60 seconds: aims at the tutorial's final loss (0.05)",
    "Tutorial": "the tutorial's exact recipe: AdamW lr 1e-4, 10 epochs (about 25 minutes on a laptop CPU)",
    "Longer": "the fast recipe with more time: a sharper model",
}
REASONS = {
    "completed": "Finished: every planned epoch is done.",
    "time budget": "Finished: the time limit was reached.",
    "stopped": "Stopped. The model keeps everything it learned up to the last completed batch.",
    "abandoned": "This run was stopped because its browser tab was gone.",
    "cancelled": "Cancelled before it started.",
}
CALIBRATE_HELP = (
    "Before the first step, scale each layer so it fires at about 15 % of its neuron-steps on 32 training images. "
    "Far from the tutorial's settings it learns much faster (thresh 0.5: test MSE 0.022 instead of 0.038 after 1,000 "
    "steps); at thresh 1, num_steps 5 it is no help (0.025 against 0.024). The model card has the table."
)
NOTHING_TRAINED = "Nothing trained yet in this session. The 'One minute' preset reaches the tutorial's final loss in about a minute."
TUTORIAL_LOSS = 0.05  # the tutorial reports "around 0.05" after 10 epochs

# --------------------------------------------------------------------------- shared

DEC0_SILENT = (
    "At thresh {thresh:g}, beta {beta:g} and num_steps {num_steps}, the decoder's first layer (dec0) "
    "**cannot fire at all**: its input is the linear layer's spikes, 0 or 1 with no weight in between, and "
    "a spike at every step charges its membrane to at most {ceiling:.3g}, not above the threshold. Nothing "
    "reaches the rest of the decoder, so the output is the same image for every digit."
)


def dec0_note(settings: NeuronSettings) -> str | None:
    """Why the decoder is dark at these settings, or None when it can fire."""
    if not layers_that_cannot_fire(settings):
        return None
    return DEC0_SILENT.format(thresh=settings.thresh, beta=settings.beta, num_steps=settings.num_steps, ceiling=settings.spike_train_ceiling)
