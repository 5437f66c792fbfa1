"""Embedding throughput: ``POST /v1/embeddings`` under 1 and 32 concurrent clients vs the model called directly.

    uv run python bench/embeddings_throughput.py [--requests 512] [--batch 32]

Starts ``outrider serve`` in a subprocess on loopback (SQLite usage and history records on, as deployed) and
drives it with N concurrent clients, each sending one text per request, and prints texts/s and p50/p95 latency.
In the same run it times the packaged all-MiniLM-L6-v2 called directly with ``transformers`` (tokenize, forward,
mean pooling, normalisation) on the same texts, one at a time before the 1-client row and in batches of ``--batch``
before the 32-client row (right before: on a shared machine the figures drift), the ceilings the endpoint is
measured against (target: 32 clients >= 90% of the direct batch). Each endpoint row also shows how many texts the
server's passes held on average (from its ``outrider_batch_size`` metric): below the server batch size, requests
reached the micro-batcher too slowly to fill its passes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.extraction_throughput import KEY, free_port, start_server  # noqa: E402
from bench.extraction_throughput import drive as extraction_drive  # noqa: E402
from outrider.backends.embedding_minilm import MINILM_EMBEDDING_ID  # noqa: E402
from outrider.backends.encoder_gliner import minilm_encoder_dir  # noqa: E402
from outrider.training.demo_data import demo_records  # noqa: E402


class Direct:
    """The model through ``transformers`` alone (tokenize, forward, mean pooling, normalise), loaded once."""

    def __init__(self) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(minilm_encoder_dir()))
        self.model = AutoModel.from_pretrained(str(minilm_encoder_dir())).eval()

    def embed(self, batch: list[str]) -> list[list[float]]:
        import torch

        inputs = self.tokenizer(batch, padding=True, truncation=True, max_length=256, return_tensors="pt")
        with torch.inference_mode():
            hidden = self.model(**inputs).last_hidden_state
            mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=1).tolist()

    def throughput(self, texts: list[str], batch_size: int) -> float:
        self.embed(texts[:batch_size])  # warm-up
        started = time.perf_counter()
        for start in range(0, len(texts), batch_size):
            self.embed(texts[start : start + batch_size])
        return len(texts) / (time.perf_counter() - started)


def embedding_body(text: str) -> dict[str, Any]:
    return {"model": MINILM_EMBEDDING_ID, "input": text, "encoding_format": "base64"}


def passes(url: str) -> tuple[float, float]:
    """(texts, passes) the server's embedding model ran so far, from its Prometheus metrics."""
    import httpx

    totals = {"sum": 0.0, "count": 0.0}
    for line in httpx.get(f"{url}/metrics", headers={"X-API-Key": KEY}, timeout=30).text.splitlines():
        if line.startswith("outrider_batch_size_") and 'kind="embedding"' in line:
            name = line.split("{", 1)[0].removeprefix("outrider_batch_size_")
            if name in totals:
                totals[name] += float(line.rsplit(" ", 1)[1])
    return totals["sum"], totals["count"]


def drive(url: str, texts: list[str], concurrency: int) -> tuple[float, list[float]]:
    """N concurrent clients, one text per request (the extraction benchmark's load generator)."""
    return asyncio.run(extraction_drive(url, texts, concurrency, "/v1/embeddings", embedding_body))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=512, help="texts sent per concurrency level")
    parser.add_argument("--batch", type=int, default=32, help="batch size of the direct transformers calls")
    parser.add_argument("--server-batch", type=int, default=32, help="the server's OUTRIDER_EMBEDDING_BATCH_MAX_SIZE")
    parser.add_argument("--concurrency", type=int, nargs="*", default=[1, 32])
    args = parser.parse_args()

    texts = [r["input"] for r in demo_records(args.requests, seed=7, held_out=True)]
    direct = Direct()
    work = Path(tempfile.mkdtemp(prefix="outrider-bench-"))
    (work / "models").mkdir()
    port = free_port()
    server = start_server(work, work / "models", port, 16, OUTRIDER_EMBEDDING_BATCH_MAX_SIZE=str(args.server_batch))
    try:
        url = f"http://127.0.0.1:{port}"
        drive(url, texts[:64], 8)  # load the model and warm up
        print(
            f"texts: {len(texts)} (~{statistics.mean(len(t.split()) for t in texts):.0f} words), "
            f"direct batch {args.batch}, server batch {args.server_batch}, {os.cpu_count()} cores"
        )
        print(f"{'':28}{'texts/s':>10}{'p50 ms':>10}{'p95 ms':>10}{'vs direct':>12}{'texts/pass':>12}")
        # Each endpoint row is compared with the direct figure measured right before it (same machine state).
        for concurrency in args.concurrency:
            few = concurrency == 1
            n = min(len(texts), 128) if few else len(texts)
            batch = 1 if few else args.batch
            reference = direct.throughput(texts[:n], batch)
            print(f"{f'transformers, batch {batch}':28}{reference:>10.1f}{'':>20}{'100%':>12}")
            texts_before, passes_before = passes(url)
            rate, latencies = drive(url, texts[:n], concurrency)
            texts_after, passes_after = passes(url)
            per_pass = (texts_after - texts_before) / max(passes_after - passes_before, 1)
            p50 = statistics.median(latencies)
            p95 = statistics.quantiles(latencies, n=20)[-1]
            label = f"endpoint, {concurrency} client{'' if few else 's'}"
            print(f"{label:28}{rate:>10.1f}{p50:>10.1f}{p95:>10.1f}{rate / reference:>11.0%}{per_pass:>12.1f}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
