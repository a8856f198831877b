"""Questions asked of a trained model: one digit's full trace, sweeps of the settings, two settings
side by side, models trained per setting, the latent code, and what the spikes cost."""
