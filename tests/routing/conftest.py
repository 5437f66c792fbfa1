from __future__ import annotations

import json
from pathlib import Path

import pytest

from outrider.routing.classifier import TaskClassifier, load_classifier

EVAL_FILE = Path(__file__).parent / "data" / "eval_prompts.jsonl"


def eval_prompts() -> list[dict]:
    return [json.loads(line) for line in EVAL_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def classifier(base_models_dir: Path) -> TaskClassifier:
    """The process-wide classifier, its token table and fit cached with the other built base models."""
    return load_classifier(base_models_dir)
