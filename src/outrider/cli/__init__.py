"""The ``outrider`` command line."""
