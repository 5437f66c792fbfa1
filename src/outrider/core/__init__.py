"""Neutral types shared by every surface and service: messages, schemas, usage, errors."""
