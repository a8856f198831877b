"""The snnTorch SAE tutorial's model and training step, as written.

Kept out of the library on purpose: it is the yardstick that the tests hold the
project's model against and that ``python -m benchmarks.engine`` measures speed against.
Only the tutorial's slips are mended (``latent_dim``/``num_steps`` and friends
become constructor arguments instead of globals; ``decode`` calls ``linearNet``).
"""

import snntorch as snn
import torch
import torch.nn as nn
import torch.nn.functional as F
from snntorch import surrogate, utils


class TutorialSAE(nn.Module):
    def __init__(self, latent_dim=32, beta=0.5, thresh=1.0, num_steps=5, spike_grad=None):
        super().__init__()
        spike_grad = spike_grad or surrogate.atan(alpha=2.0)
        self.num_steps = num_steps
        # Encoder
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1, stride=2),
            nn.BatchNorm2d(32),
            snn.Leaky(beta=beta, spike_grad=spike_grad, init_hidden=True, threshold=thresh),
            nn.Conv2d(32, 64, 3, padding=1, stride=2),
            nn.BatchNorm2d(64),
            snn.Leaky(beta=beta, spike_grad=spike_grad, init_hidden=True, threshold=thresh),
            nn.Conv2d(64, 128, 3, padding=1, stride=2),
            nn.BatchNorm2d(128),
            snn.Leaky(beta=beta, spike_grad=spike_grad, init_hidden=True, threshold=thresh),
            nn.Flatten(start_dim=1, end_dim=3),
            nn.Linear(2048, latent_dim),
            snn.Leaky(beta=beta, spike_grad=spike_grad, init_hidden=True, output=True, threshold=thresh),
        )
        # From latent back to tensor for convolution
        self.linearNet = nn.Sequential(
            nn.Linear(latent_dim, 128 * 4 * 4), snn.Leaky(beta=beta, spike_grad=spike_grad, init_hidden=True, output=True, threshold=thresh)
        )
        # Decoder
        self.decoder = nn.Sequential(
            nn.Unflatten(1, (128, 4, 4)),
            snn.Leaky(beta=beta, spike_grad=spike_grad, init_hidden=True, threshold=thresh),
            nn.ConvTranspose2d(128, 64, 3, padding=1, stride=(2, 2), output_padding=1),
            nn.BatchNorm2d(64),
            snn.Leaky(beta=beta, spike_grad=spike_grad, init_hidden=True, threshold=thresh),
            nn.ConvTranspose2d(64, 32, 3, padding=1, stride=(2, 2), output_padding=1),
            nn.BatchNorm2d(32),
            snn.Leaky(beta=beta, spike_grad=spike_grad, init_hidden=True, threshold=thresh),
            nn.ConvTranspose2d(32, 1, 3, padding=1, stride=(2, 2), output_padding=1),
            snn.Leaky(beta=beta, spike_grad=spike_grad, init_hidden=True, output=True, threshold=20000),
        )

    def forward(self, x):
        utils.reset(self.encoder)  # need to reset the hidden states of LIF
        utils.reset(self.decoder)
        utils.reset(self.linearNet)

        # encode
        spk_mem = []
        spk_rec = []
        for step in range(self.num_steps):
            spk_x, mem_x = self.encode(x)
            spk_rec.append(spk_x)
            spk_mem.append(mem_x)
        spk_rec = torch.stack(spk_rec, dim=2)
        spk_mem = torch.stack(spk_mem, dim=2)

        # decode
        spk_mem2 = []
        spk_rec2 = []
        for step in range(self.num_steps):
            x_recon, x_mem_recon = self.decode(spk_rec[..., step])
            spk_rec2.append(x_recon)
            spk_mem2.append(x_mem_recon)
        spk_rec2 = torch.stack(spk_rec2, dim=4)
        spk_mem2 = torch.stack(spk_mem2, dim=4)
        out = spk_mem2[:, :, :, :, -1]  # membrane potential of the output neuron at the last step
        return out

    def encode(self, x):
        spk_latent_x, mem_latent_x = self.encoder(x)
        return spk_latent_x, mem_latent_x

    def decode(self, x):
        spk_x, mem_x = self.linearNet(x)
        spk_x2, mem_x2 = self.decoder(spk_x)
        return spk_x2, mem_x2


def build_tutorial_sae(latent_dim=32, beta=0.5, thresh=1.0, num_steps=5):
    return TutorialSAE(latent_dim=latent_dim, beta=beta, thresh=thresh, num_steps=num_steps)


def tutorial_train_step(network, optimizer, real_img):
    """One step of the tutorial's ``train`` function (without its prints and image saves)."""
    network.train()
    optimizer.zero_grad()
    x_recon = network(real_img)
    loss_val = F.mse_loss(x_recon, real_img)
    loss_val.backward()
    optimizer.step()
    return loss_val


def tutorial_optimizer(network, lr=1e-4):
    return torch.optim.AdamW(network.parameters(), lr=lr, betas=(0.9, 0.999), weight_decay=0.001)
