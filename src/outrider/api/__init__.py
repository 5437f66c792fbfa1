"""HTTP transport: one folder per surface (schemas, conversion, routes), errors mapped in ``errors.py``."""
