"""Where work runs outside a page script: training jobs, their worker processes (local or on Redis),
the events they send, the forward process, and the results shared between sessions."""
