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
Reading, loading and merging a saved adapter folder is shared with serving: ``backends/encoder_adapters``.
"""

from __future__ import annotations

from typing import Any


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
