"""Fine-tuning evaluation on real data, through the API, next to what a user would otherwise pick.

- WNUT-17 (``wnut17/train.conll`` -> entity F1 on ``wnut17/dev.conll``): Outrider fine-tunes the MiniLM
  GLiNER2 base; the peer is spaCy's NER trainer on a blank English pipeline.
- Banking77 (``banking77/train.csv``, 10% held out with a fixed seed -> accuracy): Outrider fine-tunes the
  same base for classification; the peer is TF-IDF + logistic regression (scikit-learn).

Both sides train on exactly the same examples on the same machine, and the table reports training time.
The data goes in through the dataset importers (``POST /datasets/import``), training through
``POST /felix/training-jobs``, predictions through ``POST /inference``. Entity F1 is span-level exact
match (start, end, type) micro-averaged over the dev set, the usual CoNLL figure.
Used by ``outrider eval`` and ``bench/finetune_eval.py``; the peers need the ``bench`` dependency group.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from outrider.cli.follow import JOBS, follow_job

BASE_MODEL = "outrider/gliner2-minilm-l6"
HOLDOUT_FRACTION = 0.1
HOLDOUT_SEED = 77
PREDICT_BATCH = 32


@dataclass(frozen=True)
class EvalOptions:
    url: str | None = None
    api_key: str | None = None
    data: Path = Path("../shared/data")
    tasks: tuple[str, ...] | list[str] = ("wnut17", "banking77")
    train_limit: int | None = None
    test_limit: int | None = None
    epochs: int | None = None
    training_type: str = "full"
    batch_size: int | None = None
    learning_rate: float | None = None
    early_stopping_patience: int | None = None
    head_learning_rate: float | None = None
    entity_label_renaming: float | None = None
    # the job's validation split (calibration and the choice of the best epoch), out of the training examples
    validation_fraction: float = 0.1
    peer_epochs: int = 20
    base_models_dir: Path | None = None


@dataclass(frozen=True)
class Row:
    task: str
    system: str
    metric: str
    value: float
    train_seconds: float
    train_examples: int
    test_examples: int
    note: str = ""


# -- a server to talk to ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def server(options: EvalOptions) -> Iterator[httpx.Client]:
    """The given server, or ``outrider serve`` started in a temporary data folder for the run."""
    if options.url:
        if not options.api_key:
            raise SystemExit("--api-key (or OUTRIDER_API_KEY) is required with --url")
        with httpx.Client(base_url=options.url.rstrip("/"), headers={"X-API-Key": options.api_key}, timeout=600) as c:
            yield c
        return
    key = "ork_eval_" + secrets.token_hex(16)
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="outrider-eval-") as data_dir:
        env = {
            **os.environ,
            "OUTRIDER_DATA_DIR": data_dir,
            "OUTRIDER_ADMIN_API_KEY": key,
            "OUTRIDER_PORT": str(port),
            "OUTRIDER_LOG_LEVEL": "warning",
            "OUTRIDER_RATE_LIMITS": '{"inference": "100000/minute", "training": "1000/minute"}',
            "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
        }
        if options.base_models_dir:
            env["OUTRIDER_BASE_MODELS_DIR"] = str(options.base_models_dir.resolve())
        process = subprocess.Popen(
            [sys.executable, "-m", "outrider", "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + 120
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                        break
                if process.poll() is not None or time.time() > deadline:
                    raise SystemExit(f"the server did not start: {process.stderr.read().decode()[-2000:]}")
                time.sleep(0.5)
            with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=600) as client:
                yield client
        finally:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)
            if process.poll() is None:
                process.kill()


def _import(client: httpx.Client, name: str, fmt: str, data: bytes) -> dict:
    response = client.post("/datasets/import", params={"name": name, "format": fmt}, content=data)
    response.raise_for_status()
    return response.json()


def _fine_tune(client: httpx.Client, options: EvalOptions, name: str, dataset: str) -> dict:
    from rich.console import Console

    body = {
        "model_name": name,
        "base_model": BASE_MODEL,
        "datasets": [{"name": dataset}],
        "training_type": options.training_type,
        "nr_epochs": options.epochs,
        "batch_size": options.batch_size,
        "learning_rate": options.learning_rate,
        "early_stopping_patience": options.early_stopping_patience,
        "head_learning_rate": options.head_learning_rate,
        "entity_label_renaming": options.entity_label_renaming,
        "validation_fraction": options.validation_fraction,
    }
    response = client.post(JOBS, json={k: v for k, v in body.items() if v is not None})
    if response.status_code != 201:
        raise SystemExit(f"creating the training job failed: {response.status_code} {response.text}")
    job = follow_job(client, response.json()["id"], Console(stderr=True), poll_s=2.0)
    if job["status"] != "complete":
        raise SystemExit(f"training job {job['id']} {job['status']}: {job.get('error') or job.get('stop_reason')}")
    return job


def _predict(client: httpx.Client, model_id: str, texts: list[str], schema: dict, **extra: Any) -> list[dict]:
    results: list[dict] = []
    for start in range(0, len(texts), PREDICT_BATCH):
        body = {"model_id": model_id, "text": texts[start : start + PREDICT_BATCH], "schema": schema, "store": False}
        response = client.post("/inference", json={**body, **extra})
        response.raise_for_status()
        results += response.json()["result"]
    return results


def _job_seconds(job: dict) -> float:
    timings = job.get("timings") or {}
    return float(timings.get("total_seconds") or timings.get("train_seconds") or 0.0)


# -- WNUT-17 --------------------------------------------------------------------------------------------------


def _sentences(text: str) -> list[str]:
    """CoNLL blocks (one sentence each; blank or whitespace-only lines separate them), ``-DOCSTART-`` dropped."""
    blocks, current = [], []
    for line in text.splitlines():
        if line.strip():
            current.append(line)
        elif current:
            blocks.append("\n".join(current))
            current = []
    if current:
        blocks.append("\n".join(current))
    return [b for b in blocks if not b.lstrip().startswith("-DOCSTART-")]


def entity_f1(gold: list[set], predicted: list[set]) -> dict[str, float]:
    """Micro precision/recall/F1 of exact (start, end, label) spans."""
    true_positive = sum(len(g & p) for g, p in zip(gold, predicted, strict=True))
    n_pred, n_gold = sum(len(p) for p in predicted), sum(len(g) for g in gold)
    precision = true_positive / n_pred if n_pred else 0.0
    recall = true_positive / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def _spans(example: dict) -> set:
    return {(e["start"], e["end"], e["label"]) for e in example["entities"]}


def eval_wnut17(client: httpx.Client, options: EvalOptions) -> list[Row]:
    from outrider.datasets.importers import conll_to_examples

    folder = options.data / "wnut17"
    sentences = _sentences((folder / "train.conll").read_text(encoding="utf-8"))
    if options.train_limit:
        sentences = sentences[: options.train_limit]
    train_conll = "\n\n".join(sentences) + "\n"
    train = conll_to_examples(train_conll)
    test = conll_to_examples((folder / "dev.conll").read_text(encoding="utf-8"))
    if options.test_limit:
        test = test[: options.test_limit]
    labels = sorted({e["label"] for ex in train for e in ex["entities"]})
    gold = [_spans(ex) for ex in test]
    rows = []

    _import(client, "wnut17-train", "conll", train_conll.encode())
    job = _fine_tune(client, options, "wnut17-ner", "wnut17-train")
    results = _predict(client, job["model_id"], [ex["text"] for ex in test], {"entities": labels}, include_spans=True)
    predicted = [
        {(item["start"], item["end"], label) for label, items in r["entities"].items() for item in items}
        for r in results
    ]
    figures = entity_f1(gold, predicted)
    note = f"{options.training_type}, {job['progress'].get('epoch')} epochs, job {job['id']}"
    rows.append(
        Row(
            "WNUT-17 NER",
            "Outrider (GLiNER2 MiniLM)",
            "entity F1",
            figures["f1"],
            _job_seconds(job),
            len(train),
            len(test),
            note,
        )
    )

    started = time.perf_counter()
    nlp = train_spacy_ner(train, labels, options.peer_epochs)
    spacy_seconds = time.perf_counter() - started
    predicted = predict_spacy(nlp, [ex["text"] for ex in test])
    figures = entity_f1(gold, predicted)
    rows.append(
        Row(
            "WNUT-17 NER",
            "spaCy (blank en, NER)",
            "entity F1",
            figures["f1"],
            spacy_seconds,
            len(train),
            len(test),
            f"{options.peer_epochs} epochs",
        )
    )
    return rows


def train_spacy_ner(examples: list[dict], labels: list[str], epochs: int) -> Any:
    import spacy
    from spacy.tokens import Doc
    from spacy.training import Example
    from spacy.util import compounding, minibatch

    nlp = spacy.blank("en")
    ner = nlp.add_pipe("ner")
    for label in labels:
        ner.add_label(label)
    data = []
    for example in examples:
        words = example["text"].split(" ")  # the importer joined the CoNLL tokens with single spaces
        reference = Doc(nlp.vocab, words=words)
        spans = [
            reference.char_span(e["start"], e["end"], e["label"], alignment_mode="expand") for e in example["entities"]
        ]
        reference.ents = [s for s in spans if s is not None]
        data.append(Example(Doc(nlp.vocab, words=words), reference))
    optimizer = nlp.initialize(lambda: data)
    rng = random.Random(0)
    for _ in range(epochs):
        rng.shuffle(data)
        losses: dict = {}
        for batch in minibatch(data, size=compounding(4.0, 32.0, 1.001)):
            nlp.update(batch, drop=0.2, sgd=optimizer, losses=losses)
    return nlp


def predict_spacy(nlp: Any, texts: list[str]) -> list[set]:
    from spacy.tokens import Doc

    out = []
    for text in texts:
        doc = nlp(Doc(nlp.vocab, words=text.split(" ")))
        out.append({(ent.start_char, ent.end_char, ent.label_) for ent in doc.ents})
    return out


# -- Banking77 ----------------------------------------------------------------------------------------------


def banking77_split(path: Path) -> tuple[list[dict], list[dict]]:
    """(train, held-out): 10% of train.csv held out with a fixed seed."""
    from outrider.datasets.importers import csv_to_examples

    examples = csv_to_examples(path.read_bytes())
    order = list(range(len(examples)))
    random.Random(HOLDOUT_SEED).shuffle(order)
    held = int(len(order) * HOLDOUT_FRACTION)
    return [examples[i] for i in order[held:]], [examples[i] for i in order[:held]]


def _csv(examples: list[dict]) -> bytes:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["text", "label"])
    for example in examples:
        writer.writerow([example["text"], example["label"]])
    return buffer.getvalue().encode()


def eval_banking77(client: httpx.Client, options: EvalOptions) -> list[Row]:
    train, test = banking77_split(options.data / "banking77" / "train.csv")
    if options.train_limit:
        train = train[: options.train_limit]
    if options.test_limit:
        test = test[: options.test_limit]
    labels = sorted({ex["label"] for ex in train})
    rows = []

    _import(client, "banking77-train", "csv", _csv(train))
    job = _fine_tune(client, options, "banking77-intents", "banking77-train")
    schema = {"classifications": [{"task": "label", "labels": labels}]}
    results = _predict(client, job["model_id"], [ex["text"] for ex in test], schema, threshold=0.0)
    predicted = [_top_label(r["classifications"]["label"]) for r in results]
    accuracy = sum(p == ex["label"] for p, ex in zip(predicted, test, strict=True)) / len(test)
    note = f"{options.training_type}, {job['progress'].get('epoch')} epochs, job {job['id']}"
    rows.append(
        Row(
            "Banking77 intents",
            "Outrider (GLiNER2 MiniLM)",
            "accuracy",
            accuracy,
            _job_seconds(job),
            len(train),
            len(test),
            note,
        )
    )

    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    started = time.perf_counter()
    peer = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1), LogisticRegression(C=10, max_iter=2000)
    )
    peer.fit([ex["text"] for ex in train], [ex["label"] for ex in train])
    seconds = time.perf_counter() - started
    predicted = peer.predict([ex["text"] for ex in test])
    accuracy = sum(p == ex["label"] for p, ex in zip(predicted, test, strict=True)) / len(test)
    rows.append(
        Row(
            "Banking77 intents",
            "TF-IDF + logistic regression",
            "accuracy",
            accuracy,
            seconds,
            len(train),
            len(test),
            "word 1-2 grams, C=10",
        )
    )
    return rows


def _top_label(value: Any) -> str | None:
    """A classification result: a label, ``{"label", "confidence"}``, or a list of either (multi-label)."""
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        return value.get("label")
    return value


# -- the whole run ------------------------------------------------------------------------------------------


def run_eval(options: EvalOptions) -> list[Row]:
    runners = {"wnut17": eval_wnut17, "banking77": eval_banking77}
    unknown = [t for t in options.tasks if t not in runners]
    if unknown:
        raise SystemExit(f"unknown task(s) {unknown}: choose from {sorted(runners)}")
    rows: list[Row] = []
    with server(options) as client:
        for task in options.tasks:
            rows += runners[task](client, options)
    return rows


def print_table(rows: list[Row]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="fine-tuning on real data: Outrider vs the usual alternative, same data, same machine")
    for name, justify in (
        ("task", "left"),
        ("system", "left"),
        ("metric", "left"),
        ("value", "right"),
        ("train s", "right"),
        ("train ex.", "right"),
        ("test ex.", "right"),
        ("notes", "left"),
    ):
        table.add_column(name, justify=justify)
    for row in rows:
        table.add_row(
            row.task,
            row.system,
            row.metric,
            f"{row.value:.4f}",
            f"{row.train_seconds:.1f}",
            str(row.train_examples),
            str(row.test_examples),
            row.note,
        )
    Console(width=max(Console().width, 150)).print(table)
