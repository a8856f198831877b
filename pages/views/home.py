"""Home: what a spiking autoencoder is, the LIF update with the current values, where to go."""

import streamlit as st

from explorer.sidebar import current

settings = current()
neuron = settings.neuron
metrics = settings.checkpoint.metrics or {}

st.title(":material/bolt: Spiking Autoencoder Explorer")
st.page_link("pages/views/explore.py", label="Start here: draw a digit and watch the network rebuild it", icon=":material/draw:")
st.markdown(
    """
An **autoencoder** squeezes an image through a narrow *latent* code and rebuilds it.
In this one every layer is made of **spiking neurons**: instead of passing numbers,
each neuron integrates its input over a few **time steps** and fires a spike (1) only
when its membrane potential crosses a **threshold**. The image is shown `num_steps`
times; the encoder turns it into a train of latent spikes, and the decoder turns those
spikes back into an image, read from the membrane of the last layer at the last step.
This is the network of the snnTorch tutorial *Spiking Autoencoder using Convolutional
Spiking Neural Networks*.
"""
)

st.subheader("The neuron: leaky integrate-and-fire")
st.latex(r"U_t = \beta\,U_{t-1} + I_t - S_{t-1}\,\theta, \qquad S_t = \begin{cases}1 & U_t > \theta\\ 0 & \text{otherwise}\end{cases}")
st.markdown(
    f"With the current settings: **β = {neuron.beta:g}** (each step keeps {neuron.beta:.0%} of the membrane), "
    f"**θ = thresh = {neuron.thresh:g}**, **num_steps = {neuron.num_steps}**. "
    f"So $U_t = {neuron.beta:g}\\,U_{{t-1}} + I_t - {neuron.thresh:g}\\,S_{{t-1}}$."
)
cfg = settings.checkpoint.config
if "test_mse" in metrics:
    st.caption(
        f"Checkpoint **{settings.checkpoint_name}**: latent {cfg.latent_dim} neurons, trained with thresh {cfg.thresh:g}, "
        f"beta {cfg.beta:g}, num_steps {cfg.num_steps}; test MSE {metrics['test_mse']:.4f} on "
        f"{metrics.get('test_images', 10000):,} test images."
    )

st.subheader("Where to go")
left, middle, right = st.columns(3)
with left:
    st.page_link("pages/views/explore.py", label="Explore", icon=":material/biotech:")
    st.caption("Draw, pick or upload a digit and watch the spikes, membranes and the reconstruction build up.")
with middle:
    st.page_link("pages/views/train.py", label="Train", icon=":material/model_training:")
    st.caption("Train a network for a minute with live loss charts, then explore it.")
with right:
    st.page_link("pages/views/compare.py", label="Compare", icon=":material/compare:")
    st.caption("What do thresh and num_steps do? Sweep them, or compare models trained with each.")
