"""LoRA adapters served on a shared loaded base: one copy of the base weights, any number of adapters.

An adapter folder (``adapter_config.json`` + ``outrider.json``, as ``training/decoder.py`` saves it) is a
model id of its own. The registry loads its base model (or finds it loaded), then ``attach_adapter`` loads
the adapter's few megabytes into the base's engine, where ``peft`` keeps every adapter side by side and
applies to each row of a batch the adapter its request asked for. So adapters cost no second base, and
requests for different adapters (and for the base itself) still batch together.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
from pathlib import Path

from outrider.backends.adapters import METADATA_FILE, adapter_spec
from outrider.backends.base import ModelSpec
from outrider.backends.decoder_hf import HFDecoder
from outrider.core.errors import ModelUnavailable
from outrider.core.messages import ChatMessage, GenerationParams, GenerationStream
from outrider.core.usage import Price

log = logging.getLogger(__name__)

# peft keys adapters by name inside ModuleDicts, where dots are not allowed: model ids get a safe alias.
_adapter_numbers = itertools.count(1)


class AdapterDecoder:
    """One adapter's view of its base: generation goes to the base's engine, tagged with the adapter."""

    def __init__(self, base: HFDecoder, adapter_name: str, model_id: str) -> None:
        self.base = base
        self.adapter_name = adapter_name
        self.model_id = model_id
        self.tokenizer = base.tokenizer
        self.context_length = base.context_length

    def start(self, prompt: list[ChatMessage] | str, params: GenerationParams) -> GenerationStream:
        return self.base.start(prompt, params, adapter=self.adapter_name)

    def close(self) -> None:
        """Unload the adapter from the base (between batches); nothing to do once the base itself is closed."""
        with contextlib.suppress(RuntimeError):
            self.base.engine.run_on_thread(lambda: _unload(self.base, self.adapter_name))


def attach_adapter(base: HFDecoder, folder: Path | str, model_id: str) -> AdapterDecoder:
    """Load an adapter into ``base``'s engine (blocking until it is in) and return its servable view."""
    if not isinstance(base, HFDecoder):
        raise ModelUnavailable(f"adapter '{model_id}' needs a local transformers base model")
    name = f"adapter_{next(_adapter_numbers)}"
    path = str(folder)

    def load() -> None:  # on the engine thread, between batches: peft rewrites modules a batch would use
        from peft import PeftModel

        engine = base.engine
        if engine.peft_model is None:
            # Wraps the base in place: its projections become LoRA layers that hold every adapter.
            engine.peft_model = PeftModel.from_pretrained(engine.model, path, adapter_name=name)
        else:
            engine.peft_model.load_adapter(path, adapter_name=name)
        engine.peft_model.eval()
        engine.adapters.add(name)

    base.engine.run_on_thread(load).result()
    log.info("loaded adapter %s (%s) onto its shared base", model_id, name)
    return AdapterDecoder(base, name, model_id)


def _unload(base: HFDecoder, name: str) -> None:
    engine = base.engine
    engine.adapters.discard(name)
    if engine.peft_model is not None and name in engine.peft_model.peft_config:
        engine.peft_model.delete_adapter(name)


def is_decoder_adapter(folder: Path) -> bool:
    """A ``peft`` LoRA adapter for a causal LM (GLiNER2 adapters, for instance, are not served here)."""
    adapter = _read_json(folder / "adapter_config.json")
    if not adapter:
        return False
    metadata = _read_json(folder / METADATA_FILE)
    return metadata.get("kind") == "decoder" or adapter.get("task_type") == "CAUSAL_LM"


def adapter_base_id(folder: Path) -> str | None:
    """The model id the adapter runs on: Outrider's metadata first, else peft's own base path or hub id."""
    return _read_json(folder / METADATA_FILE).get("base_model") or _read_json(folder / "adapter_config.json").get(
        "base_model_name_or_path"
    )


def spec_for_adapter(model_id: str, folder: Path, price: Price) -> ModelSpec | None:
    base_id = adapter_base_id(folder)
    if not base_id:
        return None
    path = str(folder)
    description = f"LoRA adapter on {base_id}, saved at {folder}"

    def attach(base: HFDecoder) -> AdapterDecoder:
        return attach_adapter(base, path, model_id)

    return adapter_spec(model_id, "decoder", folder, price, description, base_id=base_id, attach=attach)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
