"""The adaptive-loop pages over plain HTTP (no browser): they need a session, show only the account's own
records, deployments and evaluations (another account's are a 404 page), put the records the judge could
not vouch for first in the review queue, and give viewers no write forms."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
import pytest

from outrider.storage.queries import inferences as inferences_q
from outrider.storage.tables import InferenceRow
from tests.api.test_evaluations import DEMO, MINILM, ner_examples, upload, wait_done
from tests.conftest import ADMIN_KEY, new_account
from tests.sessions import add_user, sign_in

PAGES = ["/ui/review", "/ui/deployments", "/ui/deployments/x", "/ui/evaluations", "/ui/evaluations/eval_x"]
PAGES += ["/ui/evaluations/eval_x/compare"]
SCHEMA = {"entities": ["person", "company"]}


@pytest.fixture(scope="module")
def owner(server, admin):
    """An owner of a fresh account, signed in, with two records, a deployment and a complete evaluation."""
    key = new_account(admin, "loop-pages")
    with httpx.Client(base_url=server.url, headers={"X-API-Key": key}, timeout=300) as keyed:
        user = add_user(keyed, "owner")
        ids = []
        for text in ("Anna Schmidt works for Sony.", "Tim Berg joined Netflix."):
            answer = keyed.post("/inference", json={"model_id": DEMO, "text": text, "schema": SCHEMA})
            assert answer.status_code == 200, answer.text
            ids.append(answer.json()["inference_id"])
        assert keyed.put("/deployments/pages-ner", json={"model_id": DEMO, "note": "<b>first</b>"}).status_code == 201
        upload(keyed, "pages-held-out", "ner", ner_examples(4))
        started = keyed.post("/evaluations", json={"models": [DEMO, MINILM], "dataset": "pages-held-out"})
        assert started.status_code == 201, started.text
        evaluation = wait_done(keyed, started.json()["id"])
        assert evaluation["status"] == "complete", evaluation
    client = sign_in(server.url, user["username"])
    yield client, ids, evaluation
    client.close()


@pytest.mark.parametrize("path", PAGES)
def test_every_loop_page_without_a_session_redirects_to_sign_in_even_with_a_key(server, path):
    for headers in ({}, {"X-API-Key": ADMIN_KEY}):
        response = httpx.get(server.url + path, headers=headers, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/ui/login?" + urlencode({"next": path}), path


def test_the_review_queue_puts_the_unjudged_first_and_drops_what_was_reviewed(server, owner):
    client, (first, second), _ = owner
    # A judge's pass on the newer record, stored as the judge stores it: the older, unjudged one comes first.
    with server.services.db.session() as s:
        account_id = s.get(InferenceRow, second).account_id
        inferences_q.upsert_judgement(
            s,
            inference_id=second,
            account_id=account_id,
            judge_model="j",
            verdict="pass",
            score=0.9,
            reasoning="ok",
            error=None,
        )
    page = client.get("/ui/review").text
    assert page.index(f"record={first}") < page.index(f"record={second}")
    assert f"Inference <code>{first}</code>" in page  # the first in the queue is open for review
    assert 'id="feedback-form"' in page and 'id="judge-form"' in page and "2 records to review" in page
    chosen = client.get("/ui/review", params={"record": second}).text
    assert f"Inference <code>{second}</code>" in chosen and "score 0.90 by j" in chosen
    assert client.post(f"/inferences/{first}/feedback", json={"verdict": "correct"}).status_code == 200
    page = client.get("/ui/review").text
    assert f"record={first}" not in page and "1 records to review" in page
    assert client.get("/ui/review", params={"model_id": "nothing"}).text.count("Nothing left to review") == 1


def test_deployment_and_evaluation_pages_show_the_accounts_own_escaped(owner, admin):
    client, _, evaluation = owner
    listing = client.get("/ui/deployments").text
    assert "/ui/deployments/pages-ner" in listing and 'id="deploy-form"' in listing
    page = client.get("/ui/deployments/@pages-ner").text
    assert "&lt;b&gt;first&lt;/b&gt;" in page and "<b>first</b>" not in page
    assert 'id="rollback"' not in page and "Nothing to roll back to" in page
    evaluations = client.get("/ui/evaluations").text
    assert evaluation["id"] in evaluations and 'id="evaluation-form"' in evaluations
    shown = client.get(f"/ui/evaluations/{evaluation['id']}").text
    assert shown.count('class="per-label"') == 2 and f"compare?candidate={MINILM.replace('/', '%2F')}" in shown
    compared = client.get(f"/ui/evaluations/{evaluation['id']}/compare").text
    assert 'id="comparison-labels"' in compared and ">person<" in compared and "paired bootstrap" in compared
    missing = client.get(f"/ui/evaluations/{evaluation['id']}/compare", params={"candidate": "nope"})
    assert missing.status_code == 404 and "no comparison with" in missing.text
    admin.put("/deployments/admins-own", json={"model_id": DEMO})
    assert "admins-own" not in client.get("/ui/deployments").text
    for path in ("/ui/deployments/admins-own", "/ui/evaluations/eval_missing", "/ui/review?record=inf_missing"):
        response = client.get(path)
        assert response.status_code == 404 and 'role="alert"' in response.text, path


def test_a_viewer_gets_no_write_forms_on_the_loop_pages(server, owner):
    client, (_, second), _ = owner
    viewer = add_user(client, "viewer")
    seen = sign_in(server.url, viewer["username"])
    review = seen.get("/ui/review", params={"record": second}).text
    assert f"Inference <code>{second}</code>" in review
    assert 'id="feedback-form"' not in review and 'id="judge-form"' not in review
    assert 'id="deploy-form"' not in seen.get("/ui/deployments").text
    deployment = seen.get("/ui/deployments/pages-ner").text
    assert "pages-ner" in deployment and 'id="deploy-form"' not in deployment and 'id="rollback"' not in deployment
    assert 'id="evaluation-form"' not in seen.get("/ui/evaluations").text
    seen.close()


def test_a_malformed_address_gets_an_error_page_and_invalid_text_never_breaks_a_page(server, owner):
    client, _, evaluation = owner
    for path in ("/ui/review?page=%ff", "/ui/evaluations?page=0", "/ui/history?page=x", "/ui/datasets/d?version=%00"):
        refused = client.get(path)
        assert refused.status_code == 422, path
        assert refused.headers["content-type"].startswith("text/html") and "Invalid address" in refused.text, path
        assert "page" in refused.text or "version" in refused.text
    api = client.get("/inferences", params={"limit": "x"})  # the JSON API keeps its own envelope
    assert api.status_code == 422 and api.headers["content-type"].startswith("application/json")
    for path in ("/ui/review?record=%ed%a0%80", "/ui/deployments/%ff", "/ui/history/%00", "/ui/evaluations/%c0%af"):
        shown = client.get(path)  # the page, or its error page: never a server error
        assert shown.status_code in (200, 404, 422) and shown.headers["content-type"].startswith("text/html"), path
    compare = client.get(f"/ui/evaluations/{evaluation['id']}/compare?candidate=%ed%a0%80")  # a lone surrogate
    assert compare.status_code in (200, 404) and compare.headers["content-type"].startswith("text/html")
