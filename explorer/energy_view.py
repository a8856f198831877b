"""The energy and sparsity panel, on Explore and in the Latent lab.

Counts are computed from the spikes of the run on screen (``sae.analysis.energy``), so they
follow thresh, beta and num_steps live; the figure is ``sae.plots.energy``.
"""

from __future__ import annotations

import streamlit as st

from explorer import lab_texts
from explorer.charts import chart
from sae.analysis.energy import OpsReport, count_operations
from sae.io.tables import csv_text
from sae.plots.energy import operations_and_energy


def show_energy(result, settings) -> None:
    """Explore's panel: ``result`` is the page's InferenceResult (every layer's spikes)."""
    report = count_operations(settings.model, result.spikes)
    st.subheader("What the spikes cost")
    # The chart is opt-in: the browser would redraw it on every slider move, in the path of the other figures.
    per_layer = st.toggle("Per layer", key="explore_energy_chart", help="The operations of every layer, as a chart.")
    show_report(report, key="explore_energy", mse=result.mse, per_layer=per_layer)


def show_report(
    report: OpsReport, key: str, baseline: OpsReport | None = None, mse: float | None = None, per_layer: bool = True, csv: bool = False
) -> None:
    """Metrics, the caption and (with ``per_layer``) the per-layer figure; ``baseline`` adds the change
    against it, ``csv`` a download of the per-layer counts."""
    cols = st.columns(4)
    delta = None if baseline is None else f"{report.synops - baseline.synops:+,} vs the own code"
    cols[0].metric(
        "Synaptic operations (ACs)",
        f"{report.synops:,}",
        delta=delta,
        delta_color="inverse",
        help="Accumulates triggered by spikes: each input spike times the connections it reaches.",
    )
    cols[1].metric(
        "Spiking network, energy",
        _nj(report.spiking_joules),
        help="0.9 pJ per accumulate + 4.6 pJ per multiply-accumulate (the first conv), compute only.",
    )
    cols[2].metric("Non-spiking, 1 pass", _nj(report.dense_joules_one_pass), help=f"{report.dense_macs_one_pass:,} multiply-accumulates at 4.6 pJ.")
    cols[3].metric(
        f"Non-spiking, {report.num_steps} passes",
        _nj(report.dense_joules_all_steps),
        help=f"{report.dense_macs_all_steps:,} multiply-accumulates at 4.6 pJ.",
    )
    st.caption(lab_texts.energy(report, mse))
    if per_layer:
        chart(operations_and_energy(report), "operations_and_energy", key)
    if csv:
        st.download_button(
            "Operation counts (.csv)",
            icon=":material/download:",
            data=csv_text(report.rows()),
            file_name="operation_counts.csv",
            mime="text/csv",
            on_click="ignore",
            key=key + "_csv",
        )


def _nj(joules: float) -> str:
    return f"{joules * 1e9:,.0f} nJ"
