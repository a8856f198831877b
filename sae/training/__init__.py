"""Training: the loop as a stream of events (``loop``), its named recipes, and the calibrated start."""
