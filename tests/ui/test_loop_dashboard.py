"""The adaptive loop's pages in a real browser (Playwright driving Debian's chromium) against one real server:
a record reviewed and corrected from the review queue (and judged there by a local decoder) lands in
history; a deployment created, switched and rolled back from its page; an evaluation started from its form
and its comparison view showing the per-label differences. The tests run in order on one browser page."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from outrider.storage.queries import jobs as jobs_q
from outrider.storage.queries import training as training_q
from tests.api.test_evaluations import ner_examples, upload
from tests.conftest import SMOL
from tests.ui.browser import DESKTOP, PHONE, browser_tab, dashboard_server, sign_in, snap

ADMIN_PASSWORD = "loop dashboard password"
DEMO = "demo-extractor"
MINILM = "outrider/gliner2-minilm-l6"
SCHEMA = {"entities": ["person", "company", "location"]}
TEXTS = ["Anna Schmidt flew from Boston to meet Siemens.", "Tim Berg works for Netflix."]
CORRECTION = {"entities": {"person": ["Anna Schmidt"], "company": ["Siemens"], "location": ["Boston"]}}
TIMEOUT_MS = 120_000

pytestmark = pytest.mark.slow
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def loop(chromium, tmp_path_factory, base_models_dir, demo_model_dir):
    running = dashboard_server(
        tmp_path_factory.mktemp("loop-dashboard"), base_models_dir, demo_model_dir, ADMIN_PASSWORD
    )
    with running.client() as client:  # traffic to review, and a held-out set to evaluate on
        for text in TEXTS:
            answer = client.post("/inference", json={"model_id": DEMO, "text": text, "schema": SCHEMA})
            assert answer.status_code == 200, answer.text
        upload(client, "held-out", "ner", ner_examples(6))
        account_id = client.get("/me").json()["id"]
    running.checkpoint = trained_checkpoint(running, account_id, demo_model_dir)
    yield running
    running.stop()


def trained_checkpoint(server, account_id: str, demo_model_dir: Path) -> str:
    """A complete training job of the account with one checkpoint, holding the demo extractor's weights (as
    the trainer would leave them, without spending a training run on it); returns the checkpoint's id."""
    with server.services.db.session() as s:
        job = jobs_q.insert_job(
            s,
            account_id=account_id,
            kind="training",
            prefix="ft",
            payload={"model_name": "loop-ner", "task_type": "ner"},
        )
        folder = server.services.training.root / job.id / "model"
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.symlink_to(demo_model_dir / "demo-extractor", target_is_directory=True)
        jobs_q.finish_job(s, job.id, status="complete", result={"model_path": f"{job.id}/model"})
        checkpoint = training_q.insert_checkpoint(
            s, job_id=job.id, account_id=account_id, step=1, epoch=1, metrics={}, path=f"{job.id}/model"
        )
    return checkpoint.id


@pytest.fixture(scope="module")
def page(chromium, loop) -> Iterator:
    with browser_tab(chromium, loop.url, TIMEOUT_MS) as tab:
        sign_in(tab, "admin", ADMIN_PASSWORD)
        yield tab


def test_a_record_judged_and_corrected_from_the_review_queue_lands_in_history(page, loop, shots):
    page.goto("/ui/review")
    rows = page.locator("#review-table tbody tr")
    expect(rows).to_have_count(2)
    assert "unjudged" in rows.first.inner_text()
    reviewing = page.locator("#reviewing code").inner_text()
    assert page.locator("#record-text mark").count() >= 1  # the record's spans drawn by the history's editor
    page.get_by_label("Judge model").select_option(SMOL)
    page.get_by_role("button", name="Judge now").click()
    expect(page.locator("#judge-current .badge")).to_have_text(re.compile(r"^(pass|fail|uncertain)$"))
    judged = loop.client().get(f"/inferences/{reviewing}").json()
    assert judged["llmaj_verdict"] in ("pass", "fail", "uncertain") and judged["llmaj_judge_model"] == SMOL
    page.get_by_label("Incorrect").check()
    page.get_by_label(re.compile("Corrected output")).fill(json.dumps(CORRECTION))
    page.get_by_role("button", name="Save feedback").click()
    page.locator("#feedback-saved", has_text="Saved.").wait_for()
    snap(page, shots, "review")
    page.get_by_role("link", name="Next in the queue").click()
    expect(page.locator("#review-table tbody tr")).to_have_count(1)
    assert reviewing not in page.locator("#review-table").inner_text()
    page.goto(f"/ui/history/{reviewing}")
    expect(page.locator("#feedback-current")).to_contain_text("incorrect")
    record = loop.client().get(f"/inferences/{reviewing}").json()
    assert record["feedback"]["corrected_output"]["entities"]["location"][0] in ("Boston", {"text": "Boston"})


def test_a_deployment_is_created_switched_and_rolled_back_from_its_page(page, loop, shots):
    page.goto("/ui/deployments")
    assert "No deployments yet" in page.content()
    page.get_by_label(re.compile("^Name")).fill("support-ner")
    page.get_by_label(re.compile("^Model")).fill(DEMO)
    page.get_by_label(re.compile("^Note")).fill("first fine-tune")
    page.get_by_role("button", name="Create deployment").click()
    page.wait_for_url(re.compile(r"/ui/deployments/support-ner$"))
    expect(page.locator("#deploy-current")).to_have_text(DEMO)
    offered = page.locator(f'#deploy-targets option[value="{loop.checkpoint}"]')
    assert offered.get_attribute("label") == "checkpoint of loop-ner at step 1"
    page.get_by_label(re.compile("^Model")).fill(loop.checkpoint)
    page.get_by_label("Note (kept in the history)").fill("a checkpoint of the retrained model")
    page.get_by_role("button", name="Switch").click()
    expect(page.locator("#deploy-current")).to_have_text(loop.checkpoint)
    assert loop.client().get("/deployments/support-ner").json()["target"] == loop.checkpoint
    answer = loop.client().post("/inference", json={"model_id": "@support-ner", "text": TEXTS[1], "schema": SCHEMA})
    assert answer.status_code == 200 and answer.json()["model_used"] == loop.checkpoint
    history = page.locator("#deployment-history tbody tr")
    expect(history).to_have_count(2)
    assert "switch" in history.first.inner_text() and "user admin" in history.first.inner_text()
    expect(page.locator("#rollback-to")).to_have_text(DEMO)
    snap(page, shots, "deployment")
    page.once("dialog", lambda dialog: dialog.dismiss())  # a cancelled confirmation changes nothing
    page.get_by_role("button", name="Roll back").click()
    assert loop.client().get("/deployments/support-ner").json()["target"] == loop.checkpoint
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Roll back").click()
    expect(page.locator("#deploy-current")).to_have_text(DEMO)
    expect(history).to_have_count(3)
    assert "rollback" in history.first.inner_text()
    assert loop.client().get("/deployments/support-ner").json()["target"] == DEMO
    page.goto("/ui/deployments")
    assert "@support-ner" in page.locator("#deployments-table").inner_text()


def test_an_evaluation_started_from_its_form_shows_the_per_label_differences(page, loop, shots):
    page.goto("/ui/evaluations")
    page.get_by_label(DEMO, exact=True).check()  # the baseline: the one checked first
    page.get_by_label(MINILM, exact=True).check()
    expect(page.locator("#e-order")).to_have_text(f"Baseline: {DEMO}; compared with it: {MINILM}")
    page.get_by_label("Dataset").select_option("held-out")
    page.get_by_role("button", name="Start evaluation").click()
    page.wait_for_url(re.compile(r"/ui/evaluations/eval_\w+$"))
    expect(page.locator("#evaluation-status")).to_have_text("complete")  # polled, then reloaded
    expect(page.locator(".per-label")).to_have_count(2)
    snap(page, shots, "evaluation")
    evaluation_id = page.url.rsplit("/", 1)[1]
    page.locator("#comparisons a").first.click()
    page.wait_for_url(re.compile(r"/compare\?candidate="))
    assert page.locator("h1").inner_text() == f"{MINILM} against {DEMO}"
    comparison = loop.client().get(f"/evaluations/{evaluation_id}").json()["comparisons"][0]
    labels = page.locator("#comparison-labels tbody tr")
    expect(labels).to_have_count(len(comparison["per_label"]))
    person = comparison["per_label"]["person"]["f1"]["difference"]
    expect(page.locator("#comparison-labels tbody tr", has_text="person")).to_contain_text(f"{person:+.3f}")
    micro = comparison["figures"]["micro_f1"]
    expect(page.locator("#comparison-figures")).to_contain_text(f"{micro['p_value']:.3f}")
    snap(page, shots, "comparison")


def test_the_loop_pages_fit_a_phone(page):
    page.set_viewport_size(PHONE)
    evaluation_id = page.url.split("/ui/evaluations/")[1].split("/")[0]
    paths = ["/ui/review", "/ui/deployments", "/ui/deployments/support-ner", "/ui/evaluations"]
    for path in [*paths, f"/ui/evaluations/{evaluation_id}", f"/ui/evaluations/{evaluation_id}/compare"]:
        page.goto(path)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], path
    page.set_viewport_size(DESKTOP)


def test_no_loop_page_logged_a_script_error_or_a_content_security_policy_violation(page):
    assert not page.console_errors
