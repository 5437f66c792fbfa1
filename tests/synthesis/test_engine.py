"""The synthesis engine with the real local teacher (SmolLM2-135M through GenerationService): every example it
hands over passes the dataset format's validation, batches arrive as they are produced, labels are balanced."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from outrider.core.errors import PermissionDenied
from outrider.datasets.formats import validate_example
from outrider.services.accounts import Principal
from outrider.services.recording import CallContext
from outrider.synthesis import SynthesisRequest, Teacher, synthesize
from tests.conftest import ADMIN_KEY, SMOL, RunningServer, make_settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread while these tests run (the teacher here and the loopback server share the process):
    on 2 cores shared with other work, two threads made decoding several times slower (measured: 8
    classification examples in 70 s with one thread, 450 s with two)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory, base_models_dir: Path) -> Iterator:
    from outrider.app_state import build_services

    built = build_services(make_settings(tmp_path_factory.mktemp("synthesis"), base_models_dir))
    yield built
    built.close()


def teacher_for(services, principal: Principal | None = None) -> Teacher:
    who = principal or services.accounts.authenticate(ADMIN_KEY)
    return Teacher(services.generation, CallContext(who, "generation-job", SMOL, store=False))


async def run(teacher: Teacher, request: SynthesisRequest, **kwargs):
    batches: list[list[dict]] = []
    progress: list[int] = []

    async def on_examples(batch: list[dict]) -> None:
        batches.append(batch)

    started = time.perf_counter()
    summary = await synthesize(teacher, request, on_examples, on_progress=progress.append, **kwargs)
    examples = [example for batch in batches for example in batch]
    minutes = (time.perf_counter() - started) / 60
    print(
        f"\n{request.task_type}: {len(examples)} examples in {minutes * 60:.0f} s "
        f"({len(examples) / minutes:.1f}/min), {summary.attempts} attempts, rejected {summary.rejected}"
    )
    assert summary.generated == len(examples)
    assert progress == [sum(len(b) for b in batches[: i + 1]) for i in range(len(batches))]
    assert summary.teacher_tokens.completion_tokens > 0
    for example in examples:
        assert validate_example(request.task_type, example, request.labels or None) is None, example
    return examples, summary


async def test_ner_examples_are_valid_and_cover_the_labels(services):
    labels = ["person", "company", "product"]
    request = SynthesisRequest("ner", 4, labels, domain_description="Tech industry news articles")
    examples, _ = await run(teacher_for(services), request)
    assert len(examples) == 4
    for example in examples:
        assert example["entities"], example
        for entity in example["entities"]:
            assert example["text"][entity["start"] : entity["end"]] == entity["text"]
    assert len({e["text"] for e in examples}) == 4


async def test_classification_examples_are_valid_and_balanced(services):
    request = SynthesisRequest(
        "classification",
        4,
        ["positive", "negative"],
        domain_description="Customer reviews of a banking app",
        classified_examples=[{"text": "The app crashes every time I log in.", "label": "negative"}],
    )
    examples, _ = await run(teacher_for(services), request)
    assert Counter(e["label"] for e in examples) == {"positive": 2, "negative": 2}
    assert "The app crashes every time I log in." not in {e["text"] for e in examples}


async def test_decoder_examples_are_chat_pairs(services):
    request = SynthesisRequest("decoder", 2, [], prompt="Answer customer questions about a banking app politely.")
    examples, _ = await run(teacher_for(services), request)
    assert len(examples) == 2
    for example in examples:
        assert [m["role"] for m in example["messages"]] == ["user", "assistant"]


async def test_a_stop_request_ends_the_run_after_the_current_batch(services):
    handed: list[dict] = []

    async def on_examples(batch: list[dict]) -> None:
        handed.extend(batch)

    request = SynthesisRequest("classification", 50, ["positive", "negative"])
    summary = await synthesize(teacher_for(services), request, on_examples, should_stop=lambda: bool(handed))
    assert summary.generated == len(handed) > 0
    assert summary.generated < 50
    assert summary.attempts <= teacher_for(services).concurrency * 3  # stopped within a few waves of the first


async def test_a_teacher_the_caller_may_not_use_fails_the_run(services):
    account, _ = services.accounts.create_account("synthesis-pool-test")
    issued = services.accounts.issue_key(account.id, name="other-models-only", model_pool=["some-other-model"])
    teacher = teacher_for(services, Principal(account=account, key=issued.key))

    async def fail_if_called(batch: list[dict]) -> None:
        raise AssertionError("no example can be produced without the teacher")

    with pytest.raises(PermissionDenied):
        await synthesize(teacher, SynthesisRequest("classification", 3, ["a", "b"]), on_examples=fail_if_called)


async def test_an_upstream_teacher_is_asked_in_json_mode(
    server: RunningServer, tmp_path: Path, base_models_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    """The upstream path end to end: the teacher is an OpenAI-compatible provider (this test suite's own server
    on loopback, serving SmolLM2), so it gets JSON mode and the shape in the prompt instead of a schema."""
    from outrider.app_state import build_services

    monkeypatch.setenv("OUTRIDER_TEST_LOOP_KEY", ADMIN_KEY)
    providers = tmp_path / "providers.json"
    model = {"model": SMOL, "id": "loop/smol", "capabilities": ["chat", "json"]}
    loop = {"name": "loop", "type": "openai", "base_url": f"{server.url}/v1", "api_key_env": "OUTRIDER_TEST_LOOP_KEY"}
    providers.write_text(json.dumps({"providers": [{**loop, "models": [model]}]}))
    upstream = build_services(make_settings(tmp_path / "data", base_models_dir, providers_file=providers))
    try:
        who = upstream.accounts.authenticate(ADMIN_KEY)
        teacher = Teacher(upstream.generation, CallContext(who, "generation-job", "loop/smol", store=False))
        assert (teacher.constrained, teacher.json_mode) == (False, True)
        request = SynthesisRequest("classification", 2, ["positive", "negative"], domain_description="Coffee shops")
        examples, summary = await run(teacher, request)
        assert Counter(e["label"] for e in examples) == {"positive": 1, "negative": 1}
        assert summary.attempts <= 16
    finally:
        await upstream.aclose()
