"""Outrider: a self-hosted platform for small task-specific models."""

__version__ = "0.1.0"
