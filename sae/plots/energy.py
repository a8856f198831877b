"""Figures of what the spikes cost: operations per layer, and a compute-only energy estimate.

Takes a :class:`sae.analysis.energy.OpsReport`; data in, ``go.Figure`` out.
"""

from __future__ import annotations

import plotly.graph_objects as go

from sae.analysis.energy import PJ_PER_AC, PJ_PER_MAC, OpsReport

SPIKING, DENSE, DENSE_ALL = "#f58518", "#4c78a8", "#9ecae9"
# A fixed left margin for the layer names: Plotly's automargin draws the figure twice.
MARGIN = dict(l=150, r=10, t=60, b=90)


def operations_and_energy(report: OpsReport) -> go.Figure:
    """Left: operations per layer, spiking (all T steps) against dense (one pass), log scale.
    Right: the estimated energy of one image, spiking against dense for 1 and for T passes."""
    layers = [f"{r.layer} ← {r.source}" for r in report.layers]
    spiking = [max(r.ops, 0) for r in report.layers]
    kinds = [f"{r.ops:,} {r.kind}s from {r.inputs:,} {'pixel-steps' if r.kind == 'MAC' else 'input spikes'}" for r in report.layers]
    steps = report.num_steps
    data = [
        dict(type="bar", orientation="h", y=layers, x=spiking, name=f"spiking network, all {steps} steps",
             marker=dict(color=SPIKING), customdata=kinds, hovertemplate="%{y}<br>%{customdata}<extra></extra>"),
        dict(type="bar", orientation="h", y=layers, x=[r.dense_macs for r in report.layers],
             name="non-spiking network, one pass (MACs)", marker=dict(color=DENSE),
             hovertemplate="%{y}<br>%{x:,} MACs in one dense pass<extra></extra>"),
    ]  # fmt: skip
    nj = 1e9
    bars = [
        ("spiking", report.spiking_joules * nj, SPIKING,
         f"{report.synops:,} ACs x {PJ_PER_AC} pJ + {report.spiking_macs:,} MACs x {PJ_PER_MAC} pJ"),
        ("dense, 1 pass", report.dense_joules_one_pass * nj, DENSE,
         f"{report.dense_macs_one_pass:,} MACs x {PJ_PER_MAC} pJ"),
        (f"dense, {steps} passes", report.dense_joules_all_steps * nj, DENSE_ALL,
         f"{report.dense_macs_all_steps:,} MACs x {PJ_PER_MAC} pJ"),
    ]  # fmt: skip
    data.append(
        dict(
            type="bar",
            x=[b[0] for b in bars],
            y=[b[1] for b in bars],
            marker=dict(color=[b[2] for b in bars]),
            text=[f"{b[1]:,.0f} nJ" for b in bars],
            textposition="outside",
            customdata=[b[3] for b in bars],
            xaxis="x2",
            yaxis="y2",
            showlegend=False,
            hovertemplate="%{x}: %{y:,.1f} nJ<br>%{customdata}<extra></extra>",
        )
    )
    layout = dict(
        height=max(440, 140 + 34 * len(layers)), margin=MARGIN, template="none", barmode="group",
        legend=dict(orientation="h", x=0, y=-0.22, xanchor="left", yanchor="top"),
        xaxis=dict(domain=[0, 0.55], type="log", title=dict(text="operations for one image (log scale)")),
        yaxis=dict(autorange="reversed"),
        xaxis2=dict(domain=[0.68, 1], anchor="y2"),
        yaxis2=dict(anchor="x2", title=dict(text="nJ per image (compute only)"), rangemode="tozero"),
        annotations=[
            dict(text="operations per layer (weights ← what feeds them)", x=0.27, y=1.02, xref="paper", yref="paper",
                 xanchor="center", yanchor="bottom", showarrow=False),
            dict(text="energy per image, 45 nm (Horowitz 2014)", x=0.84, y=1.02, xref="paper", yref="paper",
                 xanchor="center", yanchor="bottom", showarrow=False),
        ],
    )  # fmt: skip
    return go.Figure(data=data, layout=layout)
