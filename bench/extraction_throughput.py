"""Extraction throughput: the Outrider server under 1, 8 and 64 concurrent clients vs gliner2's batch_extract.

    uv run python bench/extraction_throughput.py [--model DIR] [--requests 512]

Starts ``outrider serve`` in a subprocess on loopback (SQLite history on, as deployed), drives it with
N concurrent HTTP clients each sending one text per request, and prints texts/s and p50/p95 latency.
In the same run it times ``model.batch_extract`` from the ``gliner2`` library on the same model and
texts: the throughput ceiling the server's micro-batching aims for (target: 64 clients >= 90% of it).

A last row sends one long document (``--long-chars``, 20,000 by default: demo texts joined into
paragraphs) to the server, which splits it into windows within the encoder's 512 positions, and gives the
same text to ``gliner2``'s ``batch_extract`` in a fresh process: latency, peak resident memory added by
the call (VmHWM after a reset, minus VmRSS before), entities found and how far into the text they reach.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from outrider.training.demo_data import DEMO_SCHEMA, demo_records  # noqa: E402

KEY = "ork_bench_admin_key_000000000000000"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare_model(work: Path, model: Path | None) -> Path:
    """The model folder to serve: the one given, or the freshly built MiniLM base."""
    models = work / "models"
    models.mkdir()
    if model is not None:
        (models / "bench-model").symlink_to(model.resolve())
    else:
        from outrider.backends.encoder_gliner import ensure_minilm_base

        ensure_minilm_base(models / "bench-model")
    return models


def library_throughput(model_dir: Path, texts: list[str], batch_size: int) -> float:
    from gliner2 import AutoExtractor, Schema

    from outrider.backends.encoder_gliner import to_gliner_dict
    from outrider.core.schema import ExtractionSchema

    model = AutoExtractor.from_pretrained(str(model_dir))
    schema = Schema.from_dict(to_gliner_dict(ExtractionSchema.model_validate(DEMO_SCHEMA)))
    model.batch_extract(texts[:batch_size], schema, batch_size=batch_size)  # warm-up
    started = time.perf_counter()
    model.batch_extract(texts, schema, batch_size=batch_size, threshold=0.5)
    return len(texts) / (time.perf_counter() - started)


def extraction_body(text: str) -> dict[str, Any]:
    return {"model_id": "bench-model", "text": text, "schema": DEMO_SCHEMA}


async def drive(
    url: str,
    texts: list[str],
    concurrency: int,
    path: str = "/inference",
    make_body: Callable[[str], dict[str, Any]] = extraction_body,
) -> tuple[float, list[float]]:
    """N concurrent clients on keep-alive connections (aiohttp: the load generator should cost the shared
    two cores as little as possible), each sending one text per request (``make_body(text)`` to ``path``)
    until the texts run out."""
    import aiohttp

    queue: asyncio.Queue[str] = asyncio.Queue()
    for text in texts:
        queue.put_nowait(text)
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(url, headers={"X-API-Key": KEY}, connector=connector) as session:

        async def worker() -> None:
            while not queue.empty():
                text = queue.get_nowait()
                started = time.perf_counter()
                async with session.post(path, json=make_body(text)) as response:
                    response.raise_for_status()
                    await response.read()
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return len(texts) / elapsed, latencies


def start_server(work: Path, models: Path, port: int, batch: int, **extra_env: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "OUTRIDER_DATA_DIR": str(work / "data"),
        "OUTRIDER_ADMIN_API_KEY": KEY,
        "OUTRIDER_BATCH_MAX_SIZE": str(batch),
        "OUTRIDER_LOG_LEVEL": "warning",
        # The benchmark measures serving, not the default 1,200/min per-key limit.
        "OUTRIDER_RATE_LIMITS": '{"inference": "1000000/minute", "chat": "1000000/minute", '
        '"embeddings": "1000000/minute"}',
        **extra_env,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "outrider", "serve", "--port", str(port), "--model-dir", str(models)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(process.stderr.read().decode()[-2000:])


@contextmanager
def running_server(work: Path, models: Path, batch: int, runtime: str = "auto", on_start: Any = None) -> Iterator[str]:
    """``outrider serve`` on a free loopback port for the duration of the block; yields its URL
    (``on_start`` receives the server's process, for a look at its memory)."""
    port = free_port()
    server = start_server(work, models, port, batch, OUTRIDER_ENCODER_RUNTIME=runtime)
    if on_start is not None:
        on_start(server)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


# -- one long document ------------------------------------------------------------------------------------
def long_document(chars: int) -> str:
    """Held-out demo texts as paragraphs of five, cut to ``chars`` characters at a text's end."""
    texts = [r["input"] for r in demo_records(chars // 20, seed=11, held_out=True)]
    paragraphs = [" ".join(texts[i : i + 5]) for i in range(0, len(texts), 5)]
    out = ""
    for paragraph in paragraphs:
        if len(out) + len(paragraph) + 2 > chars:
            break
        out += paragraph + "\n\n"
    return out.rstrip()


def vm(key: str, pid: str = "self") -> int:
    """A size from /proc/PID/status in bytes (``VmRSS:`` now, ``VmHWM:`` the peak since the last reset)."""
    with open(f"/proc/{pid}/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith(key)) * 1024


def reset_peak(pid: str = "self") -> None:
    with open(f"/proc/{pid}/clear_refs", "w") as handle:
        handle.write("5")  # VmHWM := VmRSS


def entity_reach(entities: dict[str, list[dict]]) -> tuple[int, int]:
    """(entities found, the furthest character offset any of them ends at)."""
    spans = [span for spans in entities.values() for span in spans]
    return len(spans), max((span["end"] for span in spans), default=0)


def server_long_document(url: str, pid: int, text: str) -> dict[str, Any]:
    body = {"model_id": "bench-model", "text": text, "schema": DEMO_SCHEMA, "include_spans": True}
    with httpx.Client(base_url=url, headers={"X-API-Key": KEY}, timeout=600) as client:
        client.post("/inference", json=body).raise_for_status()  # warm: the window batch's buffers
        before = vm("VmRSS:", str(pid))
        reset_peak(str(pid))
        started = time.perf_counter()
        response = client.post("/inference", json=body)
        seconds = time.perf_counter() - started
    response.raise_for_status()
    found, reach = entity_reach(response.json()["result"]["entities"])
    return {"seconds": seconds, "growth": vm("VmHWM:", str(pid)) - before, "found": found, "reach": reach}


def library_long_document(model_dir: str, chars: int) -> None:
    """Run in a fresh process (``--library-long``): ``batch_extract`` on the long document; prints JSON."""
    import json

    from gliner2 import AutoExtractor, Schema

    from outrider.backends.encoder_gliner import to_gliner_dict
    from outrider.core.schema import ExtractionSchema

    text = long_document(chars)
    model = AutoExtractor.from_pretrained(model_dir)
    schema = Schema.from_dict(to_gliner_dict(ExtractionSchema.model_validate(DEMO_SCHEMA)))
    model.batch_extract([text[:500]], schema, threshold=0.5)  # warm
    before = vm("VmRSS:")
    reset_peak()
    started = time.perf_counter()
    try:
        [result] = model.batch_extract([text], schema, threshold=0.5, include_spans=True)
    except Exception as exc:  # what the library does with the text is the figure
        figures: dict[str, Any] = {"error": f"{type(exc).__name__}: {str(exc)[:160]}"}
    else:
        found, reach = entity_reach(result["entities"])
        figures = {"found": found, "reach": reach}
    figures.update(seconds=time.perf_counter() - started, growth=vm("VmHWM:") - before)
    print(json.dumps(figures))


def library_long_row(model_dir: Path, chars: int) -> dict[str, Any]:
    import json

    command = [sys.executable, __file__, "--library-long", str(model_dir), "--long-chars", str(chars)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        return {"error": f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_long_rows(text: str, server: dict[str, Any], library: dict[str, Any]) -> None:
    print(f"\none document of {len(text):,} characters (schema as above)")
    print(f"{'':24}{'latency s':>10}{'peak +MiB':>10}{'entities':>10}{'reach':>9}")
    for label, row in (("server (windows)", server), ("gliner2 batch_extract", library)):
        mib = row["growth"] / 2**20 if "growth" in row else float("nan")
        seconds = row.get("seconds", float("nan"))
        if "error" in row:
            print(f"{label:24}{seconds:>10.2f}{mib:>10.0f}  fails: {row['error']}")
        else:
            reach = f"{row['reach'] / len(text):.0%}"
            print(f"{label:24}{seconds:>10.2f}{mib:>10.0f}{row['found']:>10}{reach:>9}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a saved GLiNER2 folder (default: the MiniLM base)")
    parser.add_argument("--requests", type=int, default=512, help="texts sent per concurrency level")
    parser.add_argument("--batch", type=int, default=32, help="batch size of the library's batch_extract")
    parser.add_argument("--server-batch", type=int, default=16, help="the server's OUTRIDER_BATCH_MAX_SIZE")
    parser.add_argument("--concurrency", type=int, nargs="*", default=[1, 8, 64])
    parser.add_argument("--long-chars", type=int, default=20000, help="the long document's length (0: no row)")
    parser.add_argument(
        "--runtimes", nargs="*", default=["torch", "auto"], help="OUTRIDER_ENCODER_RUNTIME of each server run"
    )
    parser.add_argument(
        "--ner-model", type=Path, help="a GLiNER2 folder fine-tuned on WNUT-17: its dev F1 in fp32 and int8"
    )
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--library-long", metavar="DIR", help=argparse.SUPPRESS)  # the library's row, in a child
    args = parser.parse_args()
    if args.library_long:
        library_long_document(args.library_long, args.long_chars)
        return

    texts = [r["input"] for r in demo_records(args.requests, seed=7, held_out=True)]
    work = Path(tempfile.mkdtemp(prefix="outrider-bench-"))
    try:
        models = prepare_model(work, args.model)
        library = library_throughput(models / "bench-model", texts, args.batch)
        print(
            f"texts: {len(texts)} (~{statistics.mean(len(t.split()) for t in texts):.0f} words), "
            f"schema: entities + structure + relation, library batch {args.batch}, "
            f"server batch {args.server_batch}, {os.cpu_count()} cores"
        )
        print(f"{'':34}{'texts/s':>10}{'p50 ms':>10}{'p95 ms':>10}{'vs library':>12}")
        print(f"{'gliner2 batch_extract (fp32)':34}{library:>10.1f}{'':>10}{'':>10}{'100%':>12}")
        for runtime in args.runtimes:
            servers: list[subprocess.Popen] = []
            with running_server(work, models, args.server_batch, runtime, servers.append) as url:
                asyncio.run(drive(url, texts[:64], 8))  # load the model (and build its int8 form) and warm up
                form = httpx.get(f"{url}/models/bench-model/health", headers={"X-API-Key": KEY}).json()["runtime"]
                for concurrency in args.concurrency:
                    n = len(texts) if concurrency > 1 else min(len(texts), 96)
                    rate, latencies = asyncio.run(drive(url, texts[:n], concurrency))
                    p50 = statistics.median(latencies)
                    p95 = statistics.quantiles(latencies, n=20)[-1]
                    label = f"server {form}, {concurrency} client{'s' if concurrency > 1 else ''}"
                    print(f"{label:34}{rate:>10.1f}{p50:>10.1f}{p95:>10.1f}{rate / library:>11.0%}")
                if args.long_chars and runtime == args.runtimes[-1]:
                    text = long_document(args.long_chars)
                    server_row = server_long_document(url, servers[0].pid, text)
                    print_long_rows(text, server_row, library_long_row(models / "bench-model", args.long_chars))
        if args.ner_model:
            print_form_f1(args.ner_model, args.data / "wnut17" / "dev.conll", work / "optimized")
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- accuracy of the int8 form ----------------------------------------------------------------------------
def form_f1(model_dir: Path, runtime: str, optimized: Path, examples: list[dict], labels: list[str]) -> dict:
    """Entity precision / recall / F1 of the served model (``Gliner2Encoder`` in one ``runtime``) on
    ``examples``: exact span and type, as ``outrider eval`` scores them."""
    from outrider.backends.encoder_gliner import Gliner2Encoder
    from outrider.cli.finetune_eval import entity_f1
    from outrider.core.schema import ExtractionSchema

    model = Gliner2Encoder.load(str(model_dir), 16, runtime, optimized)
    prepared = model.prepare(ExtractionSchema.model_validate({"entities": labels}))
    texts = [ex["text"] for ex in examples]
    started = time.perf_counter()
    results = []
    for at in range(0, len(texts), 64):
        chunk = texts[at : at + 64]
        results += model.extract(chunk, [prepared] * len(chunk), 0.5)
    seconds = time.perf_counter() - started
    found = [
        {(e["start"], e["end"], label) for label, items in r.get("entities", {}).items() for e in items}
        for r in results
    ]
    gold = [{(e["start"], e["end"], e["label"]) for e in ex["entities"]} for ex in examples]
    return {"runtime": model.runtime, "seconds": seconds, **entity_f1(gold, found)}


def print_form_f1(model_dir: Path, dev: Path, optimized: Path) -> None:
    from outrider.datasets.importers import conll_to_examples

    examples = conll_to_examples(dev.read_text(encoding="utf-8"))
    labels = sorted({e["label"] for ex in examples for e in ex["entities"]})
    print(f"\nWNUT-17 dev ({len(examples)} sentences), {model_dir.name}, threshold 0.5:")
    print(f"{'':34}{'precision':>10}{'recall':>10}{'F1':>10}{'seconds':>10}")
    rows = [form_f1(model_dir, runtime, optimized, examples, labels) for runtime in ("torch", "auto")]
    for row in rows:
        print(
            f"{row['runtime']:34}{row['precision']:>10.4f}{row['recall']:>10.4f}{row['f1']:>10.4f}{row['seconds']:>10.1f}"
        )
    print(f"{'F1 difference (points)':34}{'':>20}{(rows[1]['f1'] - rows[0]['f1']) * 100:>10.2f}")


if __name__ == "__main__":
    main()
