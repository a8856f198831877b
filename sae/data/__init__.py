"""Images in: offline MNIST (``mnist``) and drawn or uploaded digits made to look like it (``images``)."""
