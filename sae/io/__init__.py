"""Files and identities: checkpoints, atomic writes, CSV tables, fingerprints of weights and images."""
