"""GLiNER2 LoRA adapter folders as Outrider saves them: their metadata, loading one, merging one into its base.

Serving (``backends/encoder_gliner``, the model catalog) and training (``training/encoder``, the download in
``training/zipped``) both read these folders, so what they share lives here, below both. Training writes
them (``training/encoder_lora`` wraps a model for LoRA; ``training/encoder`` saves it).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from outrider.backends.adapters import read_metadata

ADAPTER_CONFIG = "adapter_config.json"


def is_encoder_adapter(folder: Path | str) -> bool:
    """A GLiNER2 LoRA adapter saved by Outrider (decoder adapters say ``kind: decoder``)."""
    folder = Path(folder)
    return (folder / ADAPTER_CONFIG).exists() and read_metadata(folder).get("kind") == "encoder"


def adapter_base(folder: Path | str) -> tuple[str, str]:
    """``(base model id, base folder)`` an adapter applies to, from its Outrider metadata."""
    metadata = read_metadata(folder)
    path = metadata.get("base_path") or json.loads((Path(folder) / ADAPTER_CONFIG).read_text()).get(
        "base_model_name_or_path"
    )
    if not path:
        raise ValueError(f"{folder} does not say which base model it adapts")
    return metadata.get("base_model") or path, path


def load_adapter(folder: Path | str, trainable: bool = False) -> tuple[Any, Any]:
    """``(peft model, the GLiNER2 model inside it)`` for an adapter folder, on a fresh copy of its base."""
    from gliner2 import AutoExtractor
    from peft import PeftModel

    _, base_path = adapter_base(folder)
    base = AutoExtractor.from_pretrained(base_path)
    wrapped = PeftModel.from_pretrained(base, str(folder), is_trainable=trainable)
    return wrapped, wrapped.get_base_model()


def set_abstention(core: Any, threshold: float) -> None:
    """The boundary head's abstention cut-off, for decoding now and in the saved ``config.json``."""
    settings = getattr(core, "boundary_settings", None)
    if settings is None or not hasattr(settings, "abstention_threshold"):
        return
    core.boundary_settings = replace(settings, abstention_threshold=threshold)
    if isinstance(getattr(core.config, "boundary_head", None), dict):
        core.config.boundary_head["abstention_threshold"] = threshold


def calibrated_thresholds(folder: Path | str) -> dict[str, float]:
    """The per-entity-type decision thresholds a trained model carries (``calibration.label_thresholds`` in
    ``outrider.json``, chosen on the job's validation split); empty for any other model."""
    calibration = read_metadata(folder).get("calibration") if Path(folder).is_dir() else None
    thresholds = (calibration or {}).get("label_thresholds") or {}
    return {str(label): float(value) for label, value in thresholds.items()}


def merge_adapter(folder: Path | str) -> Any:
    """The adapter merged into a fresh copy of its base: a plain GLiNER2 model whose ``save_pretrained``
    writes a complete folder, with the abstention cut-off calibrated in training (``outrider.json``) in
    its config, since an adapter folder has no ``config.json`` to carry it."""
    wrapped, _ = load_adapter(folder)
    model = wrapped.merge_and_unload()
    threshold = read_metadata(folder).get("abstention_threshold")
    if threshold is not None:
        set_abstention(model, threshold)
    return model.eval()
