"""One way to declare a saved LoRA adapter folder as a model: ``adapter_spec``.

Decoder adapters (``decoder_adapters``) and GLiNER2 adapters (``encoder_gliner``) are declared alike: a local
model whose folder must still exist, served either on the loaded instance of its base model (``base_id`` and
``attach``: one copy of the base for all its adapters) or, where there is no shared base to attach to, as a
model of its own (``load``: the base loaded again with the adapter applied).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from outrider.backends.base import LOCAL_CAPABILITIES, Availability, DecoderModel, EncoderModel, ModelKind, ModelSpec
from outrider.core.errors import ModelUnavailable
from outrider.core.usage import Price

# Every folder Outrider saves (adapters, full fine-tunes, checkpoints) describes itself in this file.
METADATA_FILE = "outrider.json"


def read_metadata(folder: Path | str) -> dict[str, Any]:
    """The folder's ``outrider.json`` ({} when it has none or it cannot be read)."""
    try:
        return json.loads((Path(folder) / METADATA_FILE).read_text())
    except (OSError, ValueError):
        return {}


def adapter_spec(
    model_id: str,
    kind: ModelKind,
    folder: Path | str,
    price: Price,
    description: str,
    *,
    base_id: str | None = None,
    attach: Callable[[Any], EncoderModel | DecoderModel] | None = None,
    load: Callable[[], EncoderModel | DecoderModel] | None = None,
) -> ModelSpec:
    """An adapter served on its shared base (give ``base_id`` and ``attach``) or on a copy of its own
    (give ``load``)."""
    if (load is None) == (attach is None) or (attach is None) != (base_id is None):
        raise ValueError("an adapter spec takes either base_id and attach, or load")
    path = str(folder)
    if load is None:

        def load() -> Any:  # the registry attaches it to its loaded base instead of calling this
            raise ModelUnavailable(f"adapter '{model_id}' loads onto its base model '{base_id}' through the registry")

    return ModelSpec(
        id=model_id,
        kind=kind,
        capabilities=LOCAL_CAPABILITIES[kind],
        source="local",
        description=description,
        load=load,
        price=price,
        check=lambda: Availability(os.path.isdir(path), f"{path} no longer exists"),
        base_id=base_id,
        attach=attach,
    )
