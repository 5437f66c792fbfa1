"""GLiNER2 fine-tuning on real data, straight through the trainer (no server): Banking77 and WNUT-17.

    uv run python bench/encoder_training_real_data.py banking77 [--per-label 30] [--epochs 3] [--threads 2]
    uv run python bench/encoder_training_real_data.py wnut17 [--train-limit 1000] [--epochs 3] [--threads 2]

- Banking77: ``training/run_encoder_training`` on the MiniLM GLiNER2 base with the label head (the default
  for classification), on the same 10% held-out split of ``banking77/train.csv`` as ``outrider eval``;
  prints accuracy and macro F1 on the held-out part, and the TF-IDF + logistic-regression peer on the
  same split.
- WNUT-17: the boundary model from the MiniLM base on ``wnut17/train.conll``; entity precision/recall/F1
  (span-level exact match of mention text and type per sentence) on ``wnut17/dev.conll``; with
  ``--spacy``, spaCy's NER trainer on the same sentences as the peer.

Training seconds count optimizer steps only; evaluation is timed apart. ``--data`` defaults to
``../shared/data`` next to the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from outrider.datasets.formats import to_gliner2  # noqa: E402
from outrider.training.encoder import EncoderTrainingConfig, plan_records, run_encoder_training  # noqa: E402
from outrider.training.encoder_calibration import with_label_thresholds  # noqa: E402
from outrider.training.encoder_eval import gliner_schema, predict  # noqa: E402
from outrider.training.metrics import encoder_metrics  # noqa: E402


def minilm_base(work: Path) -> Path:
    from outrider.backends.encoder_gliner import ensure_minilm_base

    cached = os.environ.get("OUTRIDER_TEST_MODEL_CACHE")
    if cached and (Path(cached) / "base-models" / "outrider--gliner2-minilm-l6" / "config.json").exists():
        return Path(cached) / "base-models" / "outrider--gliner2-minilm-l6"
    return ensure_minilm_base(work / "minilm-base")


def train_and_score(train: list[dict], test: list[dict], args: argparse.Namespace, work: Path) -> dict:
    """Train (with ``--val-fraction`` of the training records as the job's validation split, which also
    calibrates the abstention cut-off) and score the final model once on the test set."""
    from outrider.training.encoder import load_trainable
    from outrider.training.splits import split_records

    train, val = split_records(train, args.val_fraction, seed=args.seed)

    config = EncoderTrainingConfig(
        training_type=args.training_type,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        head_learning_rate=args.head_learning_rate,
        warmup_ratio=args.warmup_ratio,
        early_stopping_patience=args.early_stopping_patience,
        entity_label_renaming=args.entity_label_renaming,
        num_threads=args.threads,
        seed=args.seed,
    )
    last = {"t": time.perf_counter()}

    def progress(step: int, epoch: int, loss: float) -> None:
        if time.perf_counter() - last["t"] > 30:
            last["t"] = time.perf_counter()
            print(f"  step {step} epoch {epoch} loss {loss:.4f}", flush=True)

    result = run_encoder_training(
        minilm_base(work),
        train,
        val,
        work / "run",
        config,
        on_progress=progress,
        on_checkpoint=lambda folder, step, metrics: print(f"  checkpoint {step}: {_short(metrics)}", flush=True),
    )
    trained = load_trainable(result.model_dir, EncoderTrainingConfig(training_type=args.training_type))
    plan = plan_records(train, train + test, config.classification_method, trained.core.processor.tokenizer)
    metadata = json.loads((result.model_dir / "outrider.json").read_text())
    # scored as the server serves it by default: each entity type at its calibrated threshold
    thresholds = (metadata.get("calibration") or {}).get("label_thresholds") or {}
    schema = with_label_thresholds(gliner_schema(train + test, plan), thresholds)
    started = time.perf_counter()
    predictions = predict(trained, test, schema, config)
    metrics = encoder_metrics(test, predictions)
    return {
        "train_examples": len(train),
        "val_examples": len(val),
        "abstention_threshold": metadata["abstention_threshold"],
        "label_thresholds": thresholds,
        "best_epoch": result.best_epoch,
        "early_stopped": result.early_stopped,
        "test_examples": len(test),
        "steps": result.steps,
        "train_seconds": round(result.train_seconds, 1),
        "eval_seconds": round(time.perf_counter() - started, 1),
        "metrics": {k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)},
        "per_label": {k: round(v["f1"], 3) for k, v in metrics["per_label"].items()},
    }


def _short(metrics: dict) -> dict:
    return {k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)}


def banking77(args: argparse.Namespace, work: Path) -> dict:
    from outrider.cli.finetune_eval import banking77_split

    train, test = banking77_split(args.data / "banking77" / "train.csv")
    if args.per_label:
        taken: dict[str, int] = {}
        train = [ex for ex in train if taken.setdefault(ex["label"], 0) < args.per_label and _take(taken, ex)]
    labels = sorted({ex["label"] for ex in train + test})
    to_records = lambda examples: [to_gliner2("classification", ex, labels) for ex in examples]  # noqa: E731
    report = {"outrider": train_and_score(to_records(train), to_records(test), args, work)}

    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.pipeline import make_pipeline

    started = time.perf_counter()
    peer = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1), LogisticRegression(C=10, max_iter=2000)
    )
    peer.fit([ex["text"] for ex in train], [ex["label"] for ex in train])
    seconds = time.perf_counter() - started
    predicted = list(peer.predict([ex["text"] for ex in test]))
    gold = [ex["label"] for ex in test]
    report["tfidf_logreg"] = {
        "train_seconds": round(seconds, 1),
        "accuracy": round(sum(p == g for p, g in zip(predicted, gold, strict=True)) / len(gold), 4),
        "macro_f1": round(f1_score(gold, predicted, average="macro"), 4),
    }
    return report


def _take(taken: dict[str, int], example: dict) -> bool:
    taken[example["label"]] += 1
    return True


def wnut17(args: argparse.Namespace, work: Path) -> dict:
    from outrider.datasets.importers import conll_to_examples

    folder = args.data / "wnut17"
    train = conll_to_examples((folder / "train.conll").read_text(encoding="utf-8"))
    test = conll_to_examples((folder / "dev.conll").read_text(encoding="utf-8"))
    if args.train_limit:
        train = train[: args.train_limit]
    labels = sorted({e["label"] for ex in train + test for e in ex["entities"]})
    to_records = lambda examples: [to_gliner2("ner", ex, labels) for ex in examples]  # noqa: E731
    report = {"outrider": train_and_score(to_records(train), to_records(test), args, work)}
    if args.spacy:
        from outrider.cli.finetune_eval import entity_f1, predict_spacy, train_spacy_ner

        started = time.perf_counter()
        nlp = train_spacy_ner(train, labels, args.spacy_epochs)
        seconds = time.perf_counter() - started
        gold = [{(e["start"], e["end"], e["label"]) for e in ex["entities"]} for ex in test]
        figures = entity_f1(gold, predict_spacy(nlp, [ex["text"] for ex in test]))
        report["spacy"] = {"train_seconds": round(seconds, 1), **{k: round(v, 4) for k, v in figures.items()}}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=["banking77", "wnut17"])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--training-type", choices=["full", "lora"], default="full")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--head-learning-rate", type=float, default=None, help="the extraction heads' rate")
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--early-stopping-patience", type=int, default=None)
    parser.add_argument("--entity-label-renaming", type=float, default=None, help="gliner2's synthetic label prob")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-fraction", type=float, default=0.1, help="of the training records, for validation")
    parser.add_argument("--per-label", type=int, default=0, help="Banking77: at most this many examples per label")
    parser.add_argument("--train-limit", type=int, default=0, help="WNUT-17: the first N training sentences")
    parser.add_argument("--spacy", action="store_true", help="WNUT-17: train spaCy's NER as the peer")
    parser.add_argument("--spacy-epochs", type=int, default=10)
    parser.add_argument("--keep", type=Path, help="train in this folder and keep its checkpoints")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="outrider-bench-") as tmp:
        work = args.keep or Path(tmp)
        report = {"banking77": banking77, "wnut17": wnut17}[args.task](args, work)
    print(json.dumps({"task": args.task, "args": {k: str(v) for k, v in vars(args).items()}, **report}, indent=2))


if __name__ == "__main__":
    main()
