"""Compare: what do thresh and num_steps do?

Two answers side by side: the same trained model run at other settings (a sweep
at inference, ``sae.sweep.run_sweep``), and models trained with each setting
(``sae.sweep.compare_trained``), plus an A/B view of one digit.  Widgets ->
``sae.sweep`` -> ``sae.plots.compare`` figures; no model math here.

Results live in a process-wide, bounded cache keyed on the model's weights
(fingerprint), the settings and the digits' content, so going back to a sweep,
or opening a shared link someone already ran, is instant.  Every control is bound
to the URL (``bind="query-params"``): a link reproduces the comparison.
"""

from __future__ import annotations

import streamlit as st

from explorer.resources import shared_checkpoint, test_set
from explorer.sidebar import current
from sae import sweep
from sae.checkpoints import CheckpointError
from sae.inference import SPIKING_LAYERS, digit_fingerprint
from sae.plots import compare as plots
from sae.plots import inside

THRESH_OPTIONS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0)
STEPS_OPTIONS = (1, 2, 3, 4, 5, 8, 10, 15, 20, 30, 50)
BETA_OPTIONS = (0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 1.0)
DIGIT_SOURCES = ("random", "by class", "from Explore")  # shown as they are, and so read in a link
VIEWS = ["What does thresh do?", "What does num_steps do?", "Sweep grid", "A/B"]
MAX_DIGITS = 1000
SHOWN = 6  # digits whose reconstructions are drawn
URL = {"bind": "query-params", "persist_state": "session"}  # every control: in the link, kept across pages


@st.cache_resource
def result_cache() -> sweep.ResultCache:
    """Shared by all sessions: results are read-only and keyed on the weights themselves."""
    return sweep.ResultCache(max_entries=24)


def computed(key: tuple, label: str, compute):
    """``compute(progress)`` once per key, with a progress bar while it runs."""
    cache = result_cache()
    found = cache.get(key)
    if found is not None:
        return found
    bar = st.progress(0.0, text=label)
    try:
        return cache.get_or_compute(key, lambda: compute(lambda f, m: bar.progress(min(f, 1.0), text=f"{label}: {m}")))
    finally:
        bar.empty()


def explain(text: str) -> None:
    """The teaching note beside a chart: what to look for in it."""
    st.caption("**What to look for:** " + text)


def chart(fig, key: str) -> None:
    st.plotly_chart(fig, key=key, config=inside.png_download_config(key))


def beside(fig, key: str, text: str, ratio=(3, 1)) -> None:
    """A chart with its teaching note to the right."""
    left, right = st.columns(ratio, vertical_alignment="center")
    with left:
        chart(fig, key)
    with right:
        explain(text)


# --------------------------------------------------------------------------- digits


def choose_digits():
    """The digits every view measures on: (images [N,1,32,32], description, content key)."""
    cols = st.columns([2, 1, 1, 1])
    source = cols[0].segmented_control("Digits", DIGIT_SOURCES, default="random", required=True, key="c_digits", **URL,
                                       help="Random MNIST test digits, random ones of one class, or the digit "
                                            "on the Explore page. The MSE and spike rates average over them.")
    count = cols[1].number_input("How many", 1, MAX_DIGITS, 256, key="c_n", **URL,
                                 help="More digits: steadier numbers, slower sweeps (256 is plenty).")
    seed = cols[3].number_input("Seed", 0, 10_000, 0, key="c_seed", **URL, help="Which random digits: same seed, same digits.")
    digit_class = cols[2].selectbox("Class", list(range(10)), key="c_class", disabled=source != "by class", **URL)
    if source == "from Explore":
        digit = st.session_state.get("explore_digit")
        if digit is not None:
            label = st.session_state.get("explore_digit_label") or "your digit"
            return digit, f"the Explore page's digit ({label})", digit_fingerprint(digit)
        st.info("No digit on the Explore page yet: pick or draw one there. Using random test digits meanwhile.")
        source = "random"
    images, labels = test_set()
    picked = sweep.pick_digits(labels, "class" if source == "by class" else "random", int(count), int(seed), int(digit_class))
    chosen = images[list(picked)]
    what = f"{len(picked)} random test digits" if source == "random" else f"{len(picked)} test digits of class {digit_class}"
    return chosen, f"{what} (seed {seed})", digit_fingerprint(chosen)


# --------------------------------------------------------------------------- one-parameter questions

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
        "options": THRESH_OPTIONS,
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
        "options": STEPS_OPTIONS,
    },
}


def question_view(parameter: str, model_key: str, settings, images, about: str, digits_key: str) -> None:
    q = QUESTIONS[parameter]
    st.markdown(q["intro"])
    other = ("num_steps", settings.num_steps) if parameter == "thresh" else ("thresh", settings.thresh)
    values = st.multiselect(f"{parameter} values to compare", q["options"], default=list(q["default"]),
                            key=f"c_{parameter}_values", **URL, format_func=lambda v: f"{v:g}")
    if not values:
        st.info(f"Pick at least one value of {parameter}.")
        return
    st.caption(f"On **{about}**, with {other[0]} {other[1]:g} and beta {settings.beta:g} from the sidebar; "
               f"the model was trained at thresh {settings.model.config.thresh:g}, num_steps {settings.model.config.num_steps}.")
    thresholds = values if parameter == "thresh" else [settings.thresh]
    steps = values if parameter == "num_steps" else [settings.num_steps]
    result = run_sweep(settings.model, model_key, images, digits_key, thresholds, steps, [settings.beta])

    beside(plots.series_grid(result, parameter, SHOWN), f"{parameter}_grid", q["grid"])
    left, right = st.columns(2)
    with left:
        chart(plots.mse_vs(result, parameter), f"{parameter}_mse")
    with right:
        chart(plots.rates_vs(result, parameter), f"{parameter}_rates")
    explain(q["lines"])
    beside(plots.series_rasters(result, parameter), f"{parameter}_rasters", q["rasters"])
    st.caption(f"Swept {len(result.results)} settings over {result.digit_count} digits in {result.seconds:.1f} s.")

    st.subheader(f"Trained with a {parameter}, or changed after training?")
    trained_view(parameter, settings, images, digits_key)


def run_sweep(model, model_key, images, digits_key, thresholds, steps, betas):
    key = ("sweep", model_key, digits_key, tuple(sorted(thresholds)), tuple(sorted(steps)), tuple(sorted(betas)))
    return computed(key, f"Sweeping {len(thresholds) * len(steps) * len(betas)} settings over {len(images)} digits",
                    lambda progress: sweep.run_sweep(model, images, thresholds, steps, betas, show=min(SHOWN, len(images)),
                                                     progress=progress))


# --------------------------------------------------------------------------- trained for the setting


def trained_view(parameter: str, settings, images, digits_key: str) -> None:
    located = sweep.locate_trained(sweep.trained_series(parameter))
    missing = [entry for entry, path in located if path is None]
    models, cards = {}, {}
    for entry, path in located:
        if path is None:
            continue
        try:
            ckpt = shared_checkpoint(path, settings.device)
        except (CheckpointError, OSError) as error:
            st.warning(f"Cannot load {entry.filename}: {error}")
            missing.append(entry)
            continue
        if not entry.matches(ckpt.config):
            st.warning(f"{entry.filename} was trained with num_steps {ckpt.config.num_steps}, thresh "
                       f"{ckpt.config.thresh:g}, not as its name says: left out.")
            missing.append(entry)
            continue
        models[entry.filename], cards[entry.filename] = ckpt.model, ckpt.metrics or {}
    if missing:
        st.info("Not shipped yet, so left out: " + ", ".join(f"`{e.filename}` ({e.setting_label})" for e in missing)
                + ". The model card in `checkpoints/` says how each is made.")
    if not models:
        return
    reference = models.get(sweep.REFERENCE_FILENAME)
    if reference is None:
        st.caption(f"`{sweep.REFERENCE_FILENAME}` is missing, so the sidebar's model stands in for \"changed after training\".")
        reference = settings.model
    entries = [entry for entry, _ in located]
    key = ("trained", parameter, digits_key, sweep.model_fingerprint(reference),
           tuple((name, sweep.model_fingerprint(m)) for name, m in sorted(models.items())))
    rows = computed(key, f"Running {len(models)} trained models",
                    lambda progress: sweep.compare_trained(entries, models, reference, images,
                                                           show=min(SHOWN, len(images)), progress=progress))
    beside(plots.trained_vs_after(rows, parameter), f"{parameter}_trained",
           "Solid: a model trained with that setting. Dashed: the model trained at num_steps 5, thresh 1, switched "
           "to it afterwards. Where the lines part, the network has adapted its weights to the setting: changing a "
           "setting after training is not the same as training with it.")
    chart(plots.trained_reconstructions(rows, images[:SHOWN, 0].cpu().numpy(), parameter), f"{parameter}_trained_recon")
    st.dataframe([card_row(row, cards.get(row.entry.filename, {})) for row in rows], hide_index=True)
    st.caption("Test MSE (model card): measured on all 10,000 test images when the checkpoint was made. "
               "The other columns are on the digits above.")


def card_row(row: sweep.TrainedRow, card: dict) -> dict:
    def mse(result):
        return None if result is None else round(result.mse, 4)

    def latent(result):
        return None if result is None else f"{result.spike_rates['latent']:.1%}"

    return {"setting": row.entry.setting_label, "checkpoint": row.entry.filename,
            "test MSE (model card)": card.get("test_mse"), "MSE here, trained with it": mse(row.trained),
            "MSE here, set after training": mse(row.after_training),
            "latent rate, trained": latent(row.trained), "latent rate, set after": latent(row.after_training)}


# --------------------------------------------------------------------------- the grid


def grid_view(model_key: str, settings, images, about: str, digits_key: str) -> None:
    st.markdown("Every pair of the values below, on the same model and digits: the whole picture in one sweep.")
    cols = st.columns(3)
    thresholds = cols[0].multiselect("thresh", THRESH_OPTIONS, default=[0.25, 0.5, 1.0, 1.5, 2.0, 3.0],
                                     key="c_grid_thresh", **URL, format_func=lambda v: f"{v:g}")
    steps = cols[1].multiselect("num_steps", STEPS_OPTIONS, default=[1, 2, 3, 5, 8, 10], key="c_grid_steps", **URL)
    betas = cols[2].multiselect("beta (optional)", BETA_OPTIONS, default=[], key="c_grid_beta", **URL,
                                format_func=lambda v: f"{v:g}", help="Empty: the sidebar's beta.")
    if not thresholds or not steps:
        st.info("Pick at least one thresh and one num_steps.")
        return
    betas = betas or [settings.beta]
    st.caption(f"On **{about}**.")
    result = run_sweep(settings.model, model_key, images, digits_key, thresholds, steps, betas)
    beta = result.betas[0]
    if len(result.betas) > 1:
        beta = st.segmented_control("Show beta", result.betas, default=result.betas[0], required=True,
                                    key="c_grid_show_beta", format_func=lambda v: f"{v:g}")

    left, right = st.columns(2)
    with left:
        chart(plots.mse_heatmap(result, beta), "grid_mse")
        explain("Dark is good. Along a row (one threshold) the error usually falls as steps are added; down a column "
                "it is lowest near the threshold the model was trained with.")
    with right:
        digit = st.selectbox("Digit to show", range(len(result.digits)), format_func=lambda i: f"digit {i + 1}",
                             key="c_grid_digit")
        chart(plots.setting_grid(result, digit, beta), "grid_recon")
        explain("The same digit for every pair: thresh down, num_steps across.")
    beside(plots.sweep_rate_heatmap(result, beta), "grid_rates",
           "Share of (neuron, step) pairs that fired, per layer (rows, in signal order) and setting (columns). "
           "Higher thresholds darken whole columns: fewer spikes everywhere.")
    beside(plots.sweep_rasters(result, beta), "grid_rasters",
           "The first digit's latent code for every pair. Across a row the raster only grows: later steps never "
           "change earlier ones. Down a column it thins out.")
    for parameter in ("thresh", "num_steps"):
        left, right = st.columns(2)
        with left:
            chart(plots.mse_vs(result, parameter), f"grid_mse_{parameter}")
        with right:
            chart(plots.mean_rate_vs(result, parameter), f"grid_rate_{parameter}")
    explain("Each line holds the other parameter fixed. Threshold up: fewer spikes on every line. Steps up: the "
            "mean rate per step hardly moves, while the error changes most over the first few steps.")
    st.download_button("⬇️ Table (.csv)", data=csv_text(result.rows()), file_name="sweep.csv", mime="text/csv",
                       on_click="ignore")
    st.caption(f"Swept {len(result.results)} settings over {result.digit_count} digits in {result.seconds:.1f} s.")


def csv_text(rows: list[dict]) -> str:
    header = list(rows[0])
    lines = [",".join(header)] + [",".join(f"{row[k]:.6g}" for k in header) for row in rows]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- A/B


def setting_inputs(tag: str, defaults: tuple[float, int, float]) -> sweep.Setting:
    st.markdown(f"**Setting {tag.upper()}**")
    cols = st.columns(3)
    thresh = cols[0].number_input("thresh", 0.05, 5.0, defaults[0], 0.05, key=f"c_{tag}_thresh", **URL)
    steps = cols[1].number_input("num_steps", 1, 50, defaults[1], key=f"c_{tag}_steps", **URL)
    beta = cols[2].number_input("beta", 0.0, 1.0, defaults[2], 0.05, key=f"c_{tag}_beta", **URL)
    return sweep.Setting(float(thresh), int(steps), float(beta))


def session_ab(model, digit, a: sweep.Setting, b: sweep.Setting) -> sweep.ABResult:
    """The A/B traces, kept for this session's latest pair only: choosing another layer
    or scrolling reruns the page, and two traced forwards of up to 50 steps need not."""
    key = (sweep.model_fingerprint(model), digit_fingerprint(digit), a, b)
    kept = st.session_state.get("_c_ab")
    if kept is None or kept[0] != key:
        kept = (key, sweep.ab_compare(model, digit, a, b))
        st.session_state["_c_ab"] = kept
    return kept[1]


def ab_view(settings, images, about: str) -> None:
    st.markdown("Two settings, one digit, every figure of the Explore page side by side; the charts first show "
                "**what changed** (red: more in B, blue: more in A).")
    left, right = st.columns(2)
    with left:
        a = setting_inputs("a", (1.0, 5, 0.5))
    with right:
        b = setting_inputs("b", (2.0, 5, 0.5))
    st.caption(f"The first of {about}.")
    ab = session_ab(settings.model, images[:1], a, b)

    cols = st.columns(4)
    cols[0].metric("MSE, A", f"{ab.a.mse:.4f}")
    cols[1].metric("MSE, B", f"{ab.b.mse:.4f}", f"{ab.mse_change:+.4f}", delta_color="inverse")
    cols[2].metric("Spikes, A → B", f"{sum(ab.a.spike_counts().values()):,} → {sum(ab.b.spike_counts().values()):,}")
    cols[3].metric("Latent flips", f"{ab.latent_flips()}", help="(step, neuron) pairs that fire in one setting only.")

    beside(plots.ab_images(ab), "ab_images", "The same digit rebuilt under A and B on one grey scale; the last panel "
           "is B minus A. Colour shows exactly where the settings disagree.")
    beside(plots.ab_steps(ab), "ab_steps", "The reconstruction after each step, A above B. With one step the output "
           "is a single snapshot; with more it builds up.")
    beside(plots.ab_raster(ab), "ab_raster", "Grey: both settings fire. Blue: only A. Red: only B. A higher "
           "threshold in B leaves mostly blue: spikes that A had and B lost.")
    beside(plots.ab_rates(ab), "ab_rates", "Firing rate per layer under A and B; the numbers are B − A in "
           "percentage points.")
    layer = st.selectbox("Layer", list(SPIKING_LAYERS), index=list(SPIKING_LAYERS).index("latent"), key="c_layer", **URL,
                         help="; ".join(f"{n}: {inside.LAYER_TITLES[n]}" for n in SPIKING_LAYERS))
    beside(plots.ab_layer_counts(ab, layer), "ab_layer", "Spikes per neuron over all steps, feature maps tiled "
           "as on the Explore page; the last panel is B − A.")

    st.subheader("Every Explore figure, A beside B")
    activity = [inside.layer_activity(ab.a), inside.layer_activity(ab.b)]
    plots.align_ranges(activity)
    pairs = [
        ("comparison", [inside.digit_comparison(ab.a), inside.digit_comparison(ab.b)]),
        ("playback", [inside.reconstruction_playback(ab.a), inside.reconstruction_playback(ab.b)]),
        ("raster", [inside.latent_raster(ab.a), inside.latent_raster(ab.b)]),
        ("membrane", [inside.latent_membrane(ab.a), inside.latent_membrane(ab.b)]),
        ("layer", [inside.layer_membrane(ab.a, layer), inside.layer_membrane(ab.b, layer)]),
        ("activity", activity),
    ]
    head = st.columns(2)
    head[0].markdown(f"**A: {a.label}**")
    head[1].markdown(f"**B: {b.label}**")
    for name, (fig_a, fig_b) in pairs:
        cols = st.columns(2)
        with cols[0]:
            chart(fig_a, f"ab_a_{name}")
        with cols[1]:
            chart(fig_b, f"ab_b_{name}")


# --------------------------------------------------------------------------- page

settings = current()
st.title("⚖️ Compare settings")
st.markdown("What do **thresh** and **num_steps** do? Each question has its own tab: the same trained model run at "
            "other settings, next to models trained with them. The link in the address bar reproduces this view.")
images, about, digits_key = choose_digits()
tabs = st.tabs(VIEWS, key="c_view", on_change="rerun", bind="query-params")
with tabs[0]:
    if tabs[0].open:
        question_view("thresh", sweep.model_fingerprint(settings.model), settings, images, about, digits_key)
with tabs[1]:
    if tabs[1].open:
        question_view("num_steps", sweep.model_fingerprint(settings.model), settings, images, about, digits_key)
with tabs[2]:
    if tabs[2].open:
        grid_view(sweep.model_fingerprint(settings.model), settings, images, about, digits_key)
with tabs[3]:
    if tabs[3].open:
        ab_view(settings, images, about)
