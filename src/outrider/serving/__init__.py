"""Serving mechanics shared by every surface: micro-batching and off-loop model execution."""
