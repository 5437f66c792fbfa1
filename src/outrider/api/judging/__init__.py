"""The judge configuration surface (``/judge-config``, ``/judge-configs``)."""
