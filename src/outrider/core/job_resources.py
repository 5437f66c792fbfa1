"""What a job's Ray task asks Ray for (``OUTRIDER_RAY_JOB_RESOURCES``): checked when settings are built, used
by ``jobs/ray_backend.py`` when it submits. In core, apart from the backend, so that settings can check it
without importing the worker or Ray (or the settings themselves)."""

from __future__ import annotations

RESOURCE_KEYS = ("num_cpus", "num_gpus", "memory_mb")
GPU_KINDS = ("training",)  # what asks for a GPU by default when OUTRIDER_DEVICE names CUDA


def validate_resources(value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """``OUTRIDER_RAY_JOB_RESOURCES``: per kind, non-negative ``num_cpus`` / ``num_gpus`` / ``memory_mb``."""
    for kind, resources in value.items():
        for key, amount in resources.items():
            if key not in RESOURCE_KEYS:
                known = ", ".join(RESOURCE_KEYS)
                raise ValueError(f"ray_job_resources[{kind!r}]: unknown resource {key!r} (use {known})")
            if amount < 0:
                raise ValueError(f"ray_job_resources[{kind!r}][{key!r}] must be >= 0, not {amount}")
    return value
