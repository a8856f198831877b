"""Compare: what do thresh and num_steps do?

Two answers side by side: the same trained model run at other settings (a sweep
at inference, ``sae.analysis.sweep``), and models trained with each setting
(``sae.analysis.trained_for_setting``), plus an A/B view of one digit (``sae.analysis.two_settings``).  Widgets ->
``sae`` -> ``sae.plots.compare`` figures; inputs in ``explorer.compare_inputs``,
results cached by ``explorer.cached``, prose in ``explorer.texts``.
"""

from __future__ import annotations

import streamlit as st

from explorer import texts, visibility
from explorer.cached import SHOWN, cached_sweep, question_sweep, session_ab, trained_comparison
from explorer.charts import chart
from explorer.compare_inputs import URL, choose_digits, grid_inputs, setting_inputs, trained_models
from explorer.sidebar import current
from sae.analysis import trained_for_setting
from sae.io.tables import csv_text
from sae.model import SPIKING_LAYERS, NeuronSettings
from sae.plots import compare as plots
from sae.plots import inside

VIEWS = ["What does thresh do?", "What does num_steps do?", "Sweep grid", "A/B"]


def explain(text: str) -> None:
    """The teaching note beside a chart: what to look for in it."""
    st.caption("**What to look for:** " + text)


def beside(fig, key: str, text: str, ratio=(3, 1)) -> None:
    """A chart with its teaching note to the right."""
    left, right = st.columns(ratio, vertical_alignment="center")
    with left:
        chart(fig, key)
    with right:
        explain(text)


def question_view(parameter: str, settings, images, about: str, digits_key: str) -> None:
    q, neuron, trained = texts.QUESTIONS[parameter], settings.neuron, settings.model.config
    st.markdown(q["intro"])
    other = ("num_steps", neuron.num_steps) if parameter == "thresh" else ("thresh", neuron.thresh)
    name = f"c_{parameter}_values"
    values = st.session_state.get(name, list(q["default"]))
    if visibility.shown(name):
        values = st.multiselect(
            f"{parameter} values to compare", q["options"], default=list(q["default"]), key=f"c_{parameter}_values", **URL,
            format_func=lambda v: f"{v:g}", disabled=visibility.locked(name),
        )  # fmt: skip
    if not values:
        st.info(f"Pick at least one value of {parameter}.")
        return
    st.caption(
        f"On **{about}**, with {other[0]} {other[1]:g} and beta {neuron.beta:g} from the sidebar; "
        f"the model was trained at thresh {trained.thresh:g}, num_steps {trained.num_steps}."
    )
    result = question_sweep(settings.model, settings.model_key, neuron, parameter, values, images, digits_key)

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


def trained_view(parameter: str, settings, images, digits_key: str) -> None:
    found = trained_models(parameter, settings.device)
    if not found.models:
        return
    reference = found.models.get(trained_for_setting.REFERENCE_FILENAME)
    if reference is None:
        st.caption(f'`{trained_for_setting.REFERENCE_FILENAME}` is missing, so the sidebar\'s model stands in for "changed after training".')
        reference = settings.model
    rows = trained_comparison(parameter, found.entries, found.models, reference, images, digits_key)
    beside(plots.trained_vs_after(rows, parameter), f"{parameter}_trained", texts.TRAINED_VS_AFTER)
    chart(plots.trained_reconstructions(rows, images[:SHOWN, 0].cpu().numpy(), parameter), f"{parameter}_trained_recon")
    st.dataframe([row.table_row(found.cards.get(row.entry.filename, {})) for row in rows], hide_index=True)
    st.caption(texts.TRAINED_TABLE)
    for entry in (e for e in found.entries if e.filename in found.models):
        if note := texts.dec0_note(entry.settings(found.models[entry.filename].config.beta)):
            st.info(f"**{entry.setting_label}**: {note}", icon=":material/block:")


def grid_view(settings, images, about: str, digits_key: str) -> None:
    st.markdown(texts.GRID_INTRO)
    thresholds, steps, betas = grid_inputs()
    if not thresholds or not steps:
        st.info("Pick at least one thresh and one num_steps.")
        return
    betas = betas or [settings.neuron.beta]
    st.caption(f"On **{about}**.")
    result = cached_sweep(settings.model, settings.model_key, images, digits_key, thresholds, steps, betas)
    beta = result.betas[0]
    if len(result.betas) > 1:
        beta = st.segmented_control(
            "Show beta", result.betas, default=result.betas[0], required=True, key="c_grid_show_beta", format_func=lambda v: f"{v:g}"
        )

    left, right = st.columns(2)
    with left:
        chart(plots.mse_heatmap(result, beta), "grid_mse")
        explain(texts.GRID["mse"])
    with right:
        digit = st.selectbox("Digit to show", range(len(result.digits)), format_func=lambda i: f"digit {i + 1}", key="c_grid_digit")
        chart(plots.setting_grid(result, digit, beta), "grid_recon")
        explain(texts.GRID["recon"])
    beside(plots.sweep_rate_heatmap(result, beta), "grid_rates", texts.GRID["rates"])
    beside(plots.sweep_rasters(result, beta), "grid_rasters", texts.GRID["rasters"])
    for parameter in ("thresh", "num_steps"):
        left, right = st.columns(2)
        with left:
            chart(plots.mse_vs(result, parameter), f"grid_mse_{parameter}")
        with right:
            chart(plots.mean_rate_vs(result, parameter), f"grid_rate_{parameter}")
    explain(texts.GRID["lines"])
    st.download_button("⬇️ Table (.csv)", data=csv_text(result.rows()), file_name="sweep.csv", mime="text/csv", on_click="ignore")
    st.caption(f"Swept {len(result.results)} settings over {result.digit_count} digits in {result.seconds:.1f} s.")


def ab_view(settings, images, about: str) -> None:
    st.markdown(texts.AB_INTRO)
    left, right = st.columns(2)
    with left:
        a = setting_inputs("a", NeuronSettings(thresh=1.0, beta=0.5, num_steps=5))
    with right:
        b = setting_inputs("b", NeuronSettings(thresh=2.0, beta=0.5, num_steps=5))
    st.caption(f"The first of {about}.")
    ab = session_ab(settings.model, settings.model_key, images[:1], a, b)

    cols = st.columns(4)
    cols[0].metric("MSE, A", f"{ab.a.mse:.4f}")
    cols[1].metric("MSE, B", f"{ab.b.mse:.4f}", f"{ab.mse_change:+.4f}", delta_color="inverse")
    cols[2].metric("Spikes, A → B", f"{sum(ab.a.spike_counts().values()):,} → {sum(ab.b.spike_counts().values()):,}")
    cols[3].metric("Latent flips", f"{ab.latent_flips()}", help="(step, neuron) pairs that fire in one setting only.")

    beside(plots.ab_images(ab), "ab_images", texts.AB["images"])
    beside(plots.ab_steps(ab), "ab_steps", texts.AB["steps"])
    beside(plots.ab_raster(ab), "ab_raster", texts.AB["raster"])
    beside(plots.ab_rates(ab), "ab_rates", texts.AB["rates"])
    layer = st.session_state.get("c_layer", "latent")
    if visibility.shown("c_layer"):
        layer = st.selectbox(
            "Layer", list(SPIKING_LAYERS), index=list(SPIKING_LAYERS).index("latent"), key="c_layer", **URL, disabled=visibility.locked("c_layer"),
            help="; ".join(f"{n}: {inside.LAYER_TITLES[n]}" for n in SPIKING_LAYERS),
        )  # fmt: skip
    beside(plots.ab_layer_counts(ab, layer), "ab_layer", texts.AB["layer"])

    st.subheader("Every Explore figure, A beside B")
    head = st.columns(2)
    head[0].markdown(f"**A: {a.label}**")
    head[1].markdown(f"**B: {b.label}**")
    for name, fig_a, fig_b in plots.explore_pairs(ab, layer):
        cols = st.columns(2)
        with cols[0]:
            chart(fig_a, f"ab_a_{name}")
        with cols[1]:
            chart(fig_b, f"ab_b_{name}")


# --------------------------------------------------------------------------- page

settings = current()
st.title("⚖️ Compare settings")
st.markdown(texts.COMPARE_INTRO)
images, about, digits_key = choose_digits()
tabs = visibility.tabs("c_view", VIEWS, key="c_view", on_change="rerun", bind="query-params")
views = (
    lambda: question_view("thresh", settings, images, about, digits_key),
    lambda: question_view("num_steps", settings, images, about, digits_key),
    lambda: grid_view(settings, images, about, digits_key),
    lambda: ab_view(settings, images, about),
)
for tab, view in zip(tabs, views):
    with tab:
        if tab.open:  # only the open tab is computed and sent
            view()
# Streamlit keeps this script's functions that it calls again (a fragment, a download, a format_func)
# with the session after its tab has closed, and with them this script's globals: the digits must
# not be among them (explorer/cached.py keeps the results for the whole server, bounded).
images = None
