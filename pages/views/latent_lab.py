"""Latent lab: edit the spike code and watch the decoder answer; what each neuron draws; a blend
of two digits; the map of every test image's code; what the spikes cost.

Widgets -> ``explorer.lab`` (state, caches, click handlers) -> ``sae.analysis.latent`` -> ``sae.plots.latent``.
The editor is a fragment: a click reruns only it (decode one code, redraw two charts).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from explorer import in_page, lab, visibility
from explorer import lab_texts as texts
from explorer.charts import chart
from explorer.energy_view import show_report
from explorer.sidebar import current
from sae.analysis import latent
from sae.analysis.energy import count_operations
from sae.io.tables import raster_csv
from sae.plots import latent as figs


@st.fragment
def show_editor(settings, digit) -> None:
    """A click reruns only this.  Streamlit keeps a fragment's arguments with the session, after
    its tab has closed too: so the digit, not its code and traces (kept apart: ``explorer.cached``)."""
    own = lab.own_code(settings, digit)
    code, _ = lab.current_code(digit, own)
    neurons = code.shape[0]
    pick, *buttons = st.columns([1.3, 1, 1, 1, 1], vertical_alignment="bottom")
    if visibility.shown("lab_neuron"):
        pick.selectbox("Neuron", range(neurons), key="lab_neuron", disabled=visibility.locked("lab_neuron"), help="The neuron the buttons act on.")
    for column, (label, action) in zip(
        buttons, (("Silence it", "silence"), ("Fire at every step", "fire"), ("Clear all", "clear"), ("Restore", "restore"))
    ):
        if visibility.shown("lab_edit_buttons"):
            column.button(
                label, on_click=lab.on_button, args=(action,), width="stretch", key=f"lab_{action}", disabled=visibility.locked("lab_edit_buttons")
            )
    edited = not np.array_equal(code, own.code)
    if edited:
        answer = lab.decoded(settings, code)
        image, spikes = answer.images[0], latent.edited_spikes(own, code, answer)
    else:
        image, spikes = own.recon, own.spikes
    if (on_server := in_page.server_reason(settings.model)) is None:  # the editor computes in the browser (explorer/in_page.py)
        in_page.lab_editor(settings, own, code, locked=visibility.locked("lab_code"))
        right = st.container()
    else:
        in_page.show_server_reason(on_server)
        left, right = st.columns([1, 1.7])
        with left:
            clicks = {} if visibility.locked("lab_code") else {"on_select": lab.on_cell_click, "selection_mode": "points"}  # a click edits the code
            chart(figs.code_editor(code, own.code), "latent_code_edited", lab.editor_key(), **clicks)
    with right:
        if on_server is not None:
            chart(figs.decoded_comparison(own.input, own.recon, image), "decoded_code", "lab_decoded")
        edit = latent.judge_edit(own, code, image, lab.class_means())
        st.caption(texts.editor(edit))
        st.download_button(
            "Edited raster (.csv)",
            icon=":material/download:",
            data=raster_csv(code.T),
            file_name="latent_code_edited.csv",
            mime="text/csv",
            on_click="ignore",
            help="One row per latent neuron, one 0/1 column per time step.",
        )
    report = count_operations(settings.model, spikes)
    baseline = count_operations(settings.model, own.spikes) if edited else None
    st.markdown("**What these spikes cost**")
    per_layer = st.toggle("Per layer", key="lab_energy_chart", help="The operations of every layer, as a chart.")
    show_report(report, key="lab_energy", baseline=baseline, mse=edit.mse, per_layer=per_layer, csv=True)


def show_atlas(settings, digit, own) -> None:
    atlas = lab.atlas(settings, digit, own)
    chart(figs.neuron_atlas(atlas), "what_each_neuron_draws", "lab_atlas")
    own_class, turns = latent.class_turns(atlas, own.recon, lab.class_means())
    st.caption(texts.atlas(atlas.effect, atlas.added, turns, own_class))


def show_blend(settings, a, b) -> None:
    codes, images = lab.blend(settings, a, b)
    titles = [f"A: #{a.index}" if a.index is not None else "A"] + [f"stage {s}" for s in range(1, len(codes) - 1)]
    chart(figs.blend_row(images, codes, [*titles, f"B: #{b.index}"]), "between_two_digits", "lab_blend")
    differing = int((codes[0] != codes[-1]).any(axis=1).sum())
    st.caption(texts.blend(differing, a.label, b.label, latent.switch_stage(images)))


def show_map(settings, digit, own) -> None:
    cmap = lab.code_map(settings)
    code, _ = lab.current_code(digit, own)
    steps = code.shape[1]
    here = cmap.project(own.code.sum(axis=1)[None], steps)[0]
    mine = cmap.project(code.sum(axis=1)[None], steps)[0] if not np.array_equal(code, own.code) else None
    clicks = {} if visibility.locked(lab.KEY_A) else {"on_select": lab.on_map_select, "selection_mode": "points"}  # a click picks digit A
    chart(figs.code_map(cmap, here, mine), "map_of_codes", lab.MAP_KEY, **clicks)
    st.caption(texts.code_map(cmap, settings.neuron))
    _, label, share = cmap.neighbours(code.sum(axis=1), steps)
    st.caption(f"The {latent.NEIGHBOURS} test images whose codes are nearest to yours: {100 * share:.0f}% are {label}s.")


settings = current()
st.title(":material/science: Latent lab")
st.caption(texts.INTRO)
digit_a, digit_b, notes = lab.choose_digits()
for note in notes:
    st.info(note)
own = lab.own_code(settings, digit_a)
_, link_note = lab.current_code(digit_a, own)
if link_note:
    st.warning(link_note)
st.caption(
    f"Digit A: {digit_a.label}, {own.code.shape[0]} latent neurons x {own.code.shape[1]} steps, "
    f"{int(own.code.sum())} spikes at thresh {settings.neuron.thresh:g}, beta {settings.neuron.beta:g}."
)
tabs = visibility.tabs("lab_view", texts.VIEWS, key="lab_view", bind="query-params")
for tab, show in zip(
    tabs,
    (
        lambda: show_editor(settings, digit_a),
        lambda: show_atlas(settings, digit_a, own),
        lambda: show_blend(settings, digit_a, digit_b),
        lambda: show_map(settings, digit_a, own),
    ),
):
    with tab:
        if tab.open:
            show()
# Streamlit keeps this script's functions that it calls again (a fragment, a download, a format_func)
# with the session after its tab has closed, and with them this script's globals: the code and its traces must
# not be among them (explorer/cached.py keeps them for the whole server, bounded).
own = None
