"""Explore: give the network a digit and look inside it, step by step.

Widgets -> ``sae.analysis.inference.run_digit`` (in the forward process) -> ``sae.plots.inside``
figures.  Results are cached in this session only (``explorer.cached``: a few entries, keyed
by the digit's content, the weights and the settings), so going back to a digit or a setting
is instant and no session can grow memory without bound.  The detailed views sit in lazy tabs inside a
fragment: only the open tab is built and sent, and switching tabs or layers
reruns only that fragment.
"""

from __future__ import annotations

import streamlit as st

from explorer import in_page, state, texts, visibility
from explorer.cached import explore_result
from explorer.charts import chart
from explorer.digit_input import choose_source, read_digit
from explorer.energy_view import show_energy
from explorer.sidebar import current
from sae.analysis.inference import InferenceResult, latent_raster_csv, trace_npz_bytes
from sae.model import SPIKING_LAYERS
from sae.plots import inside

LAYER_CHOICES = list(SPIKING_LAYERS) + ["output"]
# Tab labels are also URL values (?view=...): short, plain, stable.
VIEWS = ("Latent code", "Inside a layer", "Spikes per layer", "Input vs output")


def latent_fired(result: InferenceResult) -> int:
    return int((result.spikes["latent"].sum(axis=0) > 0).sum())


def show_playback(result: InferenceResult) -> None:
    chart(inside.reconstruction_playback(result), "reconstruction_per_step", "explore_playback")
    first = result.step_mse()[0]
    st.caption(
        f"Press ▶ to watch the output build up step by step: the MSE goes from {first:.4f} after step 1 to "
        f"{result.mse:.4f} after step {result.num_steps}. The last frame is the network's reconstruction."
    )


def show_overview(result: InferenceResult) -> None:
    cols = st.columns(4)
    cols[0].metric("Reconstruction MSE", f"{result.mse:.4f}", help="Mean squared error between the 32x32 input and the reconstruction, per pixel.")
    cols[1].metric(
        f"Forward on {result.device}",
        f"{result.forward_ms:.1f} ms",
        help=f"One image, {result.num_steps} time steps, every layer recorded; the network only.",
    )
    cols[2].metric("Spikes, all layers", f"{sum(result.spike_counts().values()):,}")
    cols[3].metric("Latent neurons that fired", f"{latent_fired(result)} of {result.spikes['latent'].shape[1]}")


def show_latent(result: InferenceResult) -> None:
    left, right = st.columns(2)
    with left:
        chart(inside.latent_raster(result), "latent_raster", "explore_raster")
        st.caption(
            f"{latent_fired(result)} of {result.spikes['latent'].shape[1]} latent neurons fired, "
            f"{int(result.spikes['latent'].sum())} spikes in all: this pattern is all the decoder gets "
            "from the image. Another digit lights up another pattern."
        )
    with right:
        chart(inside.latent_membrane(result), "latent_membrane", "explore_latent_mem")
        st.caption(
            f"White is exactly the threshold θ = {result.settings.thresh:g}: red cells crossed it and fired (the "
            "membrane then drops by θ at the next step); blue ones stayed silent. Raise thresh and watch red turn blue."
        )


def show_layer(result: InferenceResult) -> None:
    layer = st.session_state.get("layer") or LAYER_CHOICES[0]
    if visibility.shown("layer"):
        layer = st.selectbox(
            "Layer",
            LAYER_CHOICES,
            key="layer",
            bind="query-params",
            disabled=visibility.locked("layer"),
            help="Spiking layers in the order the signal meets them; output is the image itself.",
        )
    chart(inside.layer_membrane(result, layer), f"membrane_{layer}", "explore_layer_fig")
    if layer == "output":
        st.caption("The output layer never fires (threshold 20,000): its membrane is the image. Press ▶ to see it build up.")
    else:
        st.caption(
            f"Left: every neuron's membrane at the step on the slider (press ▶ to play); red is above "
            f"θ = {result.settings.thresh:g} and fires. Right: how many of the {result.num_steps} steps each neuron "
            f"fired. {result.spike_count(layer):,} spikes from {result.neurons(layer):,} neurons."
        )


def show_activity(result: InferenceResult) -> None:
    chart(inside.layer_activity(result), "spikes_per_layer", "explore_activity")
    st.caption(
        "How busy each layer is. A higher thresh or a lower beta means fewer spikes; when the latent layer "
        "falls silent the decoder receives nothing and the output fades to a blur."
    )


def show_comparison(result: InferenceResult) -> None:
    chart(inside.digit_comparison(result), "input_reconstruction_error", "explore_comparison")
    st.caption(
        f"Red in the error map: ink the network painted where there was none; blue: ink it missed. Their mean square is the MSE, {result.mse:.4f}."
    )


@st.fragment
def show_details(settings, digit) -> None:
    """The detailed views; only the open tab is built, and switching reruns only this fragment.
    Streamlit keeps a fragment's arguments with the session, after its tab has closed too: so
    the digit and the settings, not their megabytes of trace (kept apart: ``explorer.cached``)."""
    result = explore_result(settings, digit)
    tabs = visibility.tabs("view", VIEWS, key="view", bind="query-params")
    for tab, show in zip(tabs, (show_latent, show_layer, show_activity, show_comparison)):
        with tab:
            if tab.open:
                show(result)


def show_downloads(settings, digit) -> None:
    """The files are made when asked for, from the kept trace (``explorer.cached``): a callable that
    held the trace itself would keep megabytes for as long as Streamlit keeps the session's buttons,
    which is after its tab has closed."""
    left, right, _ = st.columns([1, 1, 2])
    left.download_button(
        "Trace (.npz)",
        icon=":material/download:",
        data=lambda: trace_npz_bytes(explore_result(settings, digit)),
        file_name="sae_trace.npz",
        mime="application/octet-stream",
        on_click="ignore",
        width="stretch",
        help="Input, reconstruction per step, and spikes and membrane of every layer at every step.",
    )
    right.download_button(
        "Latent raster (.csv)",
        icon=":material/download:",
        data=lambda: latent_raster_csv(explore_result(settings, digit)),
        file_name="latent_raster.csv",
        mime="text/csv",
        on_click="ignore",
        width="stretch",
        help="One row per latent neuron, one 0/1 column per time step.",
    )
    st.caption("Every chart also saves as a PNG from its camera button (top right of the chart).")


settings = current()
st.title(":material/biotech: Explore the spiking autoencoder")
on_server = in_page.server_reason(settings.model)  # None: the network runs in the browser (explorer/in_page.py)
source = choose_source()

input_col, seen_col, playback_col = st.columns([1.15, 1, 1.35])
with input_col:
    choice = read_digit(source)
    if choice.problem:
        st.warning(choice.problem)
    elif choice.note:
        st.info(choice.note)
    elif choice.is_example:
        st.info(f"Showing an {choice.label}. Draw on the canvas to use your own digit.")

if choice.digit is None:
    st.info("Nothing to look inside yet: give the network a digit above.")
else:
    state.set_explore_digit(choice.digit, choice.label)
    result = explore_result(settings, choice.digit)
    with seen_col:
        if on_server is None:  # the page draws it with its figures: Streamlit need not load its own Plotly
            in_page.show_seen(result.input)
        else:
            chart(inside.digit_image(result.input), "network_input", "explore_seen")
        st.caption(
            f"What the network sees ({choice.label}): the ink cropped, scaled to 20 px, centred by mass in "
            "28x28 and resized to 32x32, as MNIST digits were made."
        )
    if on_server is None:
        in_page.explore_view(settings, result.input, LAYER_CHOICES, st.query_params.get("layer", LAYER_CHOICES[0]))
    else:
        in_page.show_server_reason(on_server)
        with playback_col:
            show_playback(result)
        show_overview(result)
    if note := texts.dec0_note(settings.neuron):
        st.warning(note, icon=":material/block:")
    if on_server is not None:
        show_details(settings, choice.digit)
    show_energy(result, settings)
    show_downloads(settings, choice.digit)
    # Streamlit keeps this script's functions that it calls again (a fragment, a download, a format_func)
    # with the session after its tab has closed, and with them this script's globals: the trace must
    # not be among them (explorer/cached.py keeps it for the whole server, bounded).
    result = None
