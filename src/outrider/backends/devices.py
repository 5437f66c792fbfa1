"""Where models run: ``OUTRIDER_DEVICE`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``) resolved once per process.

``build_services`` (and a Ray job's runner) resolves the setting with :func:`configure_device` before any
model loads: ``auto`` picks the first GPU when torch sees one, else the CPU; ``cuda`` or ``cuda:N`` without
that GPU is refused at start-up with :class:`DeviceUnavailable`, never discovered at the first request.
Loaders ask :func:`placement` where a model goes and in which precision:

- decoders (SmolLM2 and fine-tunes) run in bfloat16 on a GPU that supports it (float16 otherwise): token
  choices of greedy decoding hold, and it halves memory and doubles throughput;
- encoders (GLiNER2, MiniLM embeddings) stay float32 on the GPU: their span scores are thresholded, and
  half precision moves scores near the threshold; the ONNX int8 encoder runtime is CPU-only, so on a GPU
  encoders always run in torch;
- trainers use the device with ``torch.autocast`` (bfloat16) for the forward pass (mixed precision).

The resolved device is process state like torch's thread count (``configure_torch``): one process serves
from one device.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from outrider.core.errors import OutriderError

DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")

ModelKind = Literal["encoder", "embedding", "decoder"]


class DeviceUnavailable(OutriderError):
    """``OUTRIDER_DEVICE`` names a GPU this machine does not have (or torch was built without CUDA)."""


def parse_device(value: str) -> str:
    """The setting's syntax: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (case and spaces forgiven)."""
    text = value.strip().lower()
    if not DEVICE_PATTERN.match(text):
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, not {value!r}")
    return text


@dataclass(frozen=True)
class Placement:
    """Where one kind of model goes: a torch device string and the dtype of its weights."""

    device: str
    dtype: str  # "float32", "bfloat16" or "float16" (names of torch dtypes: this module needs no torch import)

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")

    def torch_dtype(self) -> Any:  # a torch.dtype (torch is imported lazily)
        import torch

        return getattr(torch, self.dtype)


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _bf16_supported() -> bool:
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def resolve_device(setting: str, *, cuda_count: Callable[[], int] = _cuda_count) -> str:
    """``auto`` -> ``cuda:0`` when a GPU is visible, else ``cpu``; an explicit GPU must exist."""
    setting = parse_device(setting)
    if setting == "cpu":
        return "cpu"
    count = cuda_count()
    if setting == "auto":
        return "cuda:0" if count > 0 else "cpu"
    index = int(setting.partition(":")[2] or 0)
    if count == 0:
        raise DeviceUnavailable(
            f"OUTRIDER_DEVICE={setting} but torch sees no CUDA GPU on this machine "
            "(no driver, CUDA_VISIBLE_DEVICES empty, or a CPU-only torch build); use auto or cpu"
        )
    if index >= count:
        raise DeviceUnavailable(f"OUTRIDER_DEVICE={setting} but this machine has {count} CUDA GPU(s) (0-{count - 1})")
    return f"cuda:{index}"


def placement_for(device: str, kind: ModelKind, *, bf16_supported: Callable[[], bool] = _bf16_supported) -> Placement:
    """Where a model of ``kind`` goes on the resolved ``device``, and its weights' precision."""
    if not device.startswith("cuda") or kind != "decoder":
        return Placement(device, "float32")
    return Placement(device, "bfloat16" if bf16_supported() else "float16")


class _Current:
    device = "cpu"  # until configure_device runs: CPU, the CI path


def configure_device(setting: str) -> str:
    """Resolve ``OUTRIDER_DEVICE`` for this process (at start-up); raises :class:`DeviceUnavailable`."""
    _Current.device = resolve_device(setting)
    return _Current.device


def current_device() -> str:
    return _Current.device


def placement(kind: ModelKind) -> Placement:
    """Where this process puts a model of ``kind`` (see the module's docstring)."""
    return placement_for(_Current.device, kind)


def autocast(device: str | None = None) -> contextlib.AbstractContextManager:
    """Mixed precision for a training step on ``device`` (bfloat16 on CUDA; a no-op context on the CPU)."""
    import torch

    device = device or _Current.device
    if not device.startswith("cuda"):
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if _bf16_supported() else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)
