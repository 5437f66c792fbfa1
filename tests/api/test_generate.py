"""POST /generate over HTTP: validation, the queued job record, the rate limit, and real generation jobs with
the local SmolLM2 teacher whose every stored example passes validation."""

import json
import time

import pytest

from outrider.config import Settings
from outrider.datasets.formats import validate_example
from tests.conftest import PRICES, SMOL, make_settings, new_account, start_server

NER_JOB = {
    "task_type": "ner",
    "dataset_name": "tech-ner",
    "num_examples": 3,
    "labels": ["person", "company"],
    "domain_description": "Short tech industry news sentences naming executives and their companies.",
}
CLS_JOB = {
    "task_type": "classification",
    "dataset_name": "reviews",
    "num_examples": 3,
    "labels": ["positive", "negative"],
    "domain_description": "One-sentence customer reviews of kitchen appliances.",
    "classified_examples": [{"text": "The kettle broke after a week.", "label": "negative"}],
}


@pytest.fixture(scope="module")
def queue_only(tmp_path_factory, base_models_dir):
    """A server whose jobs stay queued (no embedded worker), with the default rate limits."""
    running = start_server(make_settings(tmp_path_factory.mktemp("queue-only"), base_models_dir, embedded_worker=False))
    yield running
    running.stop()


def wait_for(client, job_id, statuses, timeout=1800):
    deadline = time.time() + timeout
    seen = []
    while time.time() < deadline:
        job = client.get(f"/generate/jobs/{job_id}").json()
        if not seen or seen[-1] != job["status"]:
            seen.append(job["status"])
        if job["status"] in statuses:
            return job, seen
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} stayed in {seen[-1]}: {job}")


def test_a_queued_job_is_recorded_and_reported(queue_only):
    with queue_only.client() as admin, queue_only.client(new_account(admin, "gen-queued")) as client:
        started = client.post("/generate", json=NER_JOB)
        assert started.status_code == 200, started.text
        assert started.json()["status"] == "queued"
        job = client.get(f"/generate/jobs/{started.json()['job_id']}").json()
        assert job["status"] == "queued" and job["dataset_name"] == "tech-ner" and job["num_examples"] == 0
        assert job["num_requested"] == 3 and job["teacher_model"] == SMOL and job["dataset_version"] is None
        assert [j["job_id"] for j in client.get("/generate/jobs").json()["jobs"]] == [job["job_id"]]
        stopped = client.post(f"/generate/jobs/{job['job_id']}/stop").json()
        assert stopped["status"] == "stopped"
        other = new_account(admin, "gen-other")
    with queue_only.client(other) as stranger:
        assert stranger.get(f"/generate/jobs/{job['job_id']}").status_code == 404


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"labels": []}, 422, "labels"),
        ({"task_type": "classification", "labels": ["only-one"]}, 422, "labels"),
        ({"num_examples": 0}, 422, "num_examples"),
        ({"task_type": "poetry"}, 422, "task_type"),
        ({"dataset_name": "no spaces please"}, 422, "name"),
        ({"teacher_model": "no-such-model"}, 404, None),
        ({"teacher_model": "outrider/gliner2-minilm-l6"}, 422, None),
        ({"task_type": "decoder", "domain_description": None}, 422, "prompt"),
    ],
)
def test_invalid_generation_requests_are_refused(queue_only, change, status, field):
    with queue_only.client() as admin:
        response = admin.post("/generate", json={**NER_JOB, **change})
    assert response.status_code == status, response.text
    if field:
        assert field in str(response.json()["detail"])


def test_the_default_limit_is_120_generate_requests_per_minute_and_the_121st_is_429(queue_only):
    assert Settings().rate_limits["generate"] == "120/minute"
    with queue_only.client() as admin, queue_only.client(new_account(admin, "gen-limited")) as client:
        for _ in range(120):
            response = client.post("/generate", json=NER_JOB)
            assert response.status_code == 200, response.text
        assert response.headers["X-RateLimit-Limit"] == "120"
        refused = client.post("/generate", json=NER_JOB)
        assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 60
        label = client.post("/generate/ner/label-existing", json={"labels": ["person"], "inputs": ["x"]})
        assert label.status_code == 429  # the same group
        assert client.get("/generate/jobs", params={"limit": 1}).status_code == 200  # polling is not limited


@pytest.fixture(scope="module")
def generator(server, admin):
    with server.client(new_account(admin, "gen-real")) as client:
        yield client


@pytest.mark.slow
def test_real_generation_jobs_with_the_local_teacher_store_only_valid_examples(generator):
    """NER and classification jobs run side by side on SmolLM2 (their teacher requests share decode batches)."""
    bodies = {"ner": NER_JOB, "cls": CLS_JOB}
    started = {name: generator.post("/generate", json=body) for name, body in bodies.items()}
    assert all(r.status_code == 200 and r.json()["status"] == "queued" for r in started.values())
    seen: dict[str, list[str]] = {name: ["queued"] for name in bodies}
    final: dict[str, dict] = {}
    deadline = time.time() + 1800
    while len(final) < len(bodies) and time.time() < deadline:
        for name in set(bodies) - set(final):
            job = generator.get(f"/generate/jobs/{started[name].json()['job_id']}").json()
            if seen[name][-1] != job["status"]:
                seen[name].append(job["status"])
            if job["status"] in ("complete", "failed", "stopped"):
                final[name] = job
        time.sleep(0.2)
    assert len(final) == len(bodies), f"still running after 30 minutes: {seen}"
    listed = {j["job_id"]: j for j in generator.get("/generate/jobs").json()["jobs"]}  # versions read in one query
    for name, body in bodies.items():
        job = final[name]
        assert listed[job["job_id"]] == job
        assert job["status"] == "complete", job["error"]
        assert seen[name] == ["queued", "running", "complete"]
        # A weak teacher may run out of attempts before the third valid example: the job then completes
        # with what it produced. Whatever it stored must be valid, distinct and counted right.
        produced = job["num_examples"]
        assert 1 <= produced <= 3 and job["dataset_version"] == 1 and job["started_at"] <= job["finished_at"]
        version = generator.get(f"/datasets/{body['dataset_name']}/versions/1").json()
        assert version["status"] == "ready" and version["source"] == "generation"
        assert version["example_count"] == produced
        assert version["job_id"] == job["job_id"] and set(version["label_stats"]) <= set(body["labels"])
        lines = generator.get(f"/datasets/{body['dataset_name']}/versions/1/download").content.splitlines()
        examples = [json.loads(line) for line in lines]
        assert len(examples) == produced
        for example in examples:
            assert validate_example(body["task_type"], example, labels=body["labels"]) is None, example
        assert len({e["text"] for e in examples}) == produced  # no duplicates
    spent = generator.get("/credits/transactions", params={"kind": "generation"}).json()
    assert spent["total"] > 0  # teacher calls were charged to the job's account as generation


def test_a_restart_keeps_queued_jobs_and_teacher_calls_are_charged_to_the_owner(tmp_path, base_models_dir):
    """Queued on a server without a worker, run by the next server's worker: the owner has no credit, so the
    first teacher call is refused (402) and the job fails with that reason, leaving no empty version."""
    first = start_server(make_settings(tmp_path, base_models_dir, embedded_worker=False, model_prices=PRICES))
    try:
        with first.client() as admin:
            key = new_account(admin, "gen-broke", credit_usd=None)
        with first.client(key) as client:
            job_id = client.post("/generate", json=CLS_JOB).json()["job_id"]
    finally:
        first.stop()
    second = start_server(make_settings(tmp_path, base_models_dir, model_prices=PRICES))
    try:
        with second.client(key) as client:
            job, _ = wait_for(client, job_id, ("complete", "failed"), timeout=600)
            assert job["status"] == "failed" and "insufficient credits" in job["error"], job
            assert job["num_examples"] == 0 and job["dataset_version"] is None
            assert client.get("/datasets/reviews").status_code == 404
    finally:
        second.stop()


def test_examples_reach_the_dataset_as_produced_and_charges_name_the_job(server, admin, monkeypatch):
    """Issue #15: a job held paid-for examples unwritten while the rest of its wave ran, then failed. Here one
    request of the first wave makes a real (charged) teacher call and then hangs until the test lets it fail
    with a refusal; the two examples its neighbours produced must be committed (and readable) meanwhile, stay
    in the ``partial`` version after the failure, and every ``generation`` charge names the job."""
    import asyncio
    import threading

    from outrider.core.errors import PermissionDenied
    from outrider.core.messages import ChatMessage, GenerationParams
    from outrider.services.generation import GenerationRequest
    from outrider.synthesis import engine
    from outrider.synthesis.tasks import Candidate, Rejected

    texts = iter(["The kettle boils water quickly and quietly.", "My new toaster burns every slice of bread."])
    release = threading.Event()
    calls: list[int] = []

    async def produce(run, slot):
        calls.append(slot.seed)
        if len(calls) == 1:  # the slow request: paid for, then refused after a long wait
            teacher = run.teacher
            hello = GenerationRequest(
                model_id=teacher.model_id,
                messages=[ChatMessage("user", "Say hello.")],
                params=GenerationParams(max_tokens=2, stream=False),
            )
            await teacher.generation.generate(teacher.ctx, hello)
            await asyncio.to_thread(release.wait, 120)
            raise PermissionDenied("the teacher refused this request")
        text = next(texts, None)
        if text is None:
            return Rejected("garbled")
        return Candidate({"text": text, "label": slot.labels[0]}, key=text)

    monkeypatch.setattr(engine._Run, "produce", produce)
    body = {key: value for key, value in CLS_JOB.items() if key != "domain_description"}  # no topics call
    body["dataset_name"] = "streamed-reviews"
    key = new_account(admin, "gen-streamed")
    with server.client(key) as client:
        try:
            job_id = client.post("/generate", json=body).json()["job_id"]
            deadline = time.time() + 120
            while (job := client.get(f"/generate/jobs/{job_id}").json())["num_examples"] < 2:
                assert time.time() < deadline and job["status"] in ("queued", "running"), job
                time.sleep(0.1)
            # Committed while the slow request still hangs: readable, not held back for the wave.
            assert job["status"] == "running" and job["dataset_version"] == 1, job
            page = client.get(f"/datasets/{body['dataset_name']}/versions/1/examples").json()
            assert page["status"] == "building" and len(page["examples"]) == 2, page
        finally:
            release.set()
        job, _ = wait_for(client, job_id, ("complete", "failed", "stopped"), timeout=120)
        assert job["status"] == "failed" and "refused" in job["error"], job
        assert job["num_examples"] == 2
        version = client.get(f"/datasets/{body['dataset_name']}/versions/1").json()
        assert version["status"] == "partial" and version["example_count"] == 2
        charges = client.get("/credits/transactions", params={"kind": "generation"}).json()["data"]
        assert charges and {t["reference_id"] for t in charges} == {job_id}, charges
