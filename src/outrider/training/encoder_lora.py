"""LoRA for GLiNER2 models: adapters on the encoder *and* trainable task heads, saved as one ``peft`` adapter.

From a fresh base (the MiniLM GLiNER2 model) the task heads are random: LoRA on the encoder alone, which
is what ``gliner2``'s trainer does (it freezes every weight, then adds adapters), leaves them random and
learns nothing. Here the heads are ``peft``'s ``modules_to_save``: trained in full and written into the
adapter file next to the low-rank matrices (about 13 MB at r=16 on MiniLM, against 90 MB for the model).

Loading one with the libraries alone::

    from gliner2 import AutoExtractor
    from peft import PeftModel

    base = AutoExtractor.from_pretrained("BASE_FOLDER_OR_HUB_ID")
    model = PeftModel.from_pretrained(base, "ADAPTER_FOLDER").merge_and_unload()  # a plain extractor again
    print(model.extract_entities("Tim Cook runs Apple.", ["person", "company"]))

Outrider instead keeps the base loaded once and switches adapters per request (``backends/encoder_gliner``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

METADATA_FILE = "outrider.json"
ADAPTER_CONFIG = "adapter_config.json"


def read_metadata(folder: Path | str) -> dict[str, Any]:
    try:
        return json.loads((Path(folder) / METADATA_FILE).read_text())
    except (OSError, ValueError):
        return {}


def is_encoder_adapter(folder: Path | str) -> bool:
    """A GLiNER2 LoRA adapter saved by Outrider (decoder adapters say ``kind: decoder``)."""
    folder = Path(folder)
    return (folder / ADAPTER_CONFIG).exists() and read_metadata(folder).get("kind") == "encoder"


def head_modules(model: Any) -> list[str]:
    """The model's task heads that exist (``task_module_names`` lists optional ones too)."""
    return [name for name in model.task_module_names() if getattr(model, name, None) is not None]


def add_lora(model: Any, r: int, alpha: float, dropout: float) -> Any:
    """Wrap a GLiNER2 model: LoRA on every encoder projection, every task head fully trainable."""
    from gliner2.training.lora_targets import _resolve_targets
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=_resolve_targets(model, ["encoder"]),
        modules_to_save=head_modules(model),
        bias="none",
    )
    return get_peft_model(model, config)


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


def adapter_usage(base_id: str, folder: str = "model") -> str:
    """Python that loads a GLiNER2 LoRA adapter with ``gliner2`` and ``peft`` alone (for the README)."""
    return f"""import dataclasses
import json

from gliner2 import AutoExtractor
from peft import PeftModel

base = AutoExtractor.from_pretrained("{base_id}")  # the base the adapter was trained on (a folder or hub id)
model = PeftModel.from_pretrained(base, "{folder}").merge_and_unload().eval()  # a plain GLiNER2 model again
# the abstention cut-off calibrated in training (an adapter has no config.json of its own to carry it)
threshold = json.load(open("{folder}/outrider.json")).get("abstention_threshold")
if threshold is not None:
    model.boundary_settings = dataclasses.replace(model.boundary_settings, abstention_threshold=threshold)
print(model.extract_entities("Tim Cook runs Apple in Cupertino.", ["person", "company", "location"]))
"""


def merge_adapter(folder: Path | str) -> Any:
    """The adapter merged into a fresh copy of its base: a plain GLiNER2 model whose ``save_pretrained``
    writes a complete folder, with the abstention cut-off calibrated in training (``outrider.json``) in
    its config, since an adapter folder has no ``config.json`` to carry it."""
    from outrider.training.encoder_calibration import set_abstention

    wrapped, _ = load_adapter(folder)
    model = wrapped.merge_and_unload()
    threshold = read_metadata(folder).get("abstention_threshold")
    if threshold is not None:
        set_abstention(model, threshold)
    return model.eval()
