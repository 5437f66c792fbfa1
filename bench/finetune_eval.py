"""Fine-tuning on real data through the API, next to spaCy NER and TF-IDF + logistic regression.

    uv sync --group bench
    uv run python bench/finetune_eval.py [--data ../shared/data] [--task wnut17 --task banking77] [--train-limit N]

The same run as ``outrider eval`` (``src/outrider/cli/finetune_eval.py`` has the method): starts
``outrider serve`` in a temporary folder (or uses ``--url`` / ``--api-key``), imports WNUT-17 and Banking77
through the dataset importers, fine-tunes the MiniLM GLiNER2 base through ``POST /felix/training-jobs``,
scores entity F1 on WNUT-17 dev and accuracy on a held-out 10% of Banking77 train, trains the peers on the
same examples, and prints the comparison table with training times.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from outrider.cli.finetune_eval import EvalOptions, print_table, run_eval  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("OUTRIDER_URL"))
    parser.add_argument("--api-key", default=os.environ.get("OUTRIDER_API_KEY"))
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--task", action="append", choices=["wnut17", "banking77"])
    parser.add_argument("--train-limit", type=int)
    parser.add_argument("--test-limit", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--training-type", default="full", choices=["lora", "full"])
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--early-stopping-patience", type=int)
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    parser.add_argument("--peer-epochs", type=int, default=20)
    parser.add_argument("--base-models-dir", type=Path)
    args = parser.parse_args()
    options = EvalOptions(
        url=args.url,
        api_key=args.api_key,
        data=args.data,
        tasks=args.task or ["wnut17", "banking77"],
        train_limit=args.train_limit,
        test_limit=args.test_limit,
        epochs=args.epochs,
        training_type=args.training_type,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        early_stopping_patience=args.early_stopping_patience,
        validation_fraction=args.validation_fraction,
        peer_epochs=args.peer_epochs,
        base_models_dir=args.base_models_dir,
    )
    print_table(run_eval(options))


if __name__ == "__main__":
    main()
