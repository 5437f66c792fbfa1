"""The dashboard in a real browser (Playwright driving Debian's chromium) against one real server: sign-in,
keys shown once and revoked, a playground extraction and a streamed routed chat, the record found in history
and corrected, a dataset uploaded (with line errors) and paged, a training job watched and stopped, usage
with its CSV, the overview, the phone layout, and sign-out. The tests run in order on one browser page."""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from playwright.sync_api import expect

from tests.ui.browser import DESKTOP, PHONE, browser_tab, dashboard_server, sign_in, snap

ADMIN_PASSWORD = "dashboard admin password"
MINILM = "outrider/gliner2-minilm-l6"
SENTENCE = "At Siemens's Boston campus, engineer Anna Schmidt demoed the new Zune HD, which sells for $649."
CORRECTION = {"entities": {"person": ["Anna Schmidt"], "company": ["Siemens"], "location": ["Boston"]}}
TIMEOUT_MS = 120_000

pytestmark = pytest.mark.slow
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def dash(chromium, tmp_path_factory, base_models_dir, demo_model_dir):
    running = dashboard_server(
        tmp_path_factory.mktemp("dashboard"),
        base_models_dir,
        demo_model_dir,
        ADMIN_PASSWORD,
        rate_limits={"training": "100000/minute"},
        job_heartbeat_s=1.0,
        training_stop_grace_s=10.0,
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def page(chromium, dash) -> Iterator:
    with browser_tab(chromium, dash.url, TIMEOUT_MS) as tab:
        yield tab


def test_a_page_without_a_session_sends_to_sign_in_and_a_wrong_password_is_shown(page, shots):
    page.goto("/ui/keys?x=1")
    assert page.url.endswith("/ui/login?next=%2Fui%2Fkeys%3Fx%3D1")
    page.get_by_label("Username or email").fill("admin")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#login-error")).to_contain_text("invalid username, email or password")
    snap(page, shots, "login")


def test_sign_in_returns_to_the_page_asked_for(page):
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/ui/keys\?x=1$"))
    assert page.locator("h1").inner_text() == "API keys"
    assert "admin · owner" in page.locator(".whoami").inner_text()
    page.goto("/ui/login")  # already signed in: on to the overview
    assert page.url.endswith("/ui/") and page.locator("h1").inner_text() == "Overview"


def test_the_sign_in_page_never_sends_to_another_site(page, dash):
    page.context.clear_cookies()
    for target in ("https://example.org/", "//example.org/ui/", "/ui//example.org"):
        page.goto("/ui/login?" + urlencode({"next": target}))
        page.get_by_label("Username or email").fill("admin")
        page.get_by_label("Password").fill(ADMIN_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"/ui/$"))
        assert page.url == f"{dash.url}/ui/", target
        page.context.clear_cookies()
    sign_in(page, "admin", ADMIN_PASSWORD)


def test_a_new_key_is_shown_once_works_and_is_revoked_after_confirmation(page, dash, shots):
    page.goto("/ui/keys")
    create = page.locator("#key-form")
    create.get_by_label("Name").fill("browser key")
    create.get_by_label("demo-extractor").check()
    create.get_by_label("Optimisation mode").select_option("cost")
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("#key-raw")).to_have_value(re.compile("^ork_"))
    raw = page.locator("#key-raw").input_value()
    assert raw.startswith("ork_")
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#key-copied")).to_contain_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == raw
    snap(page, shots, "keys-created")
    me = httpx.get(f"{dash.url}/keys", headers={"X-API-Key": raw})
    assert me.status_code == 200
    listed = next(k for k in me.json()["keys"] if k["name"] == "browser key")
    assert listed["model_pool"] == ["demo-extractor"] and listed["optimize_mode"] == "cost"

    page.get_by_role("button", name="I have stored it").click()
    row = page.locator("tr", has_text="browser key")
    row.wait_for()
    assert raw not in page.content()  # shown once: the list has the prefix only
    assert listed["prefix"] in row.inner_text()
    snap(page, shots, "keys")

    page.once("dialog", lambda dialog: dialog.dismiss())  # a cancelled confirmation revokes nothing
    row.get_by_role("button", name="Revoke").click()
    assert httpx.get(f"{dash.url}/me", headers={"X-API-Key": raw}).status_code == 200
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    page.locator("tr", has_text="browser key").locator(".badge", has_text="revoked").wait_for()
    assert httpx.get(f"{dash.url}/me", headers={"X-API-Key": raw}).status_code == 403


def test_a_key_is_edited_through_the_api_and_its_refusal_is_shown(page, dash, shots):
    created = dash.client().post("/keys", json={"name": "editable", "optimize_mode": "balanced"}).json()
    page.goto("/ui/keys")
    page.get_by_role("button", name="Edit editable").click()
    form = page.locator("#edit-form")
    expect(form.get_by_label("Name")).to_have_value("editable")
    form.get_by_label("demo-extractor").check()
    form.get_by_label("Optimisation mode").select_option("latency")
    form.get_by_label("Requests per minute").fill("2000000000")  # over the API's bound: its message is shown
    form.get_by_role("button", name="Save changes").click()
    expect(page.locator("#edit-error")).to_contain_text("rpm_limit")
    form.get_by_label("Requests per minute").fill("90")
    form.get_by_label("Tokens per minute").fill("50000")
    snap(page, shots, "keys-edit")
    form.get_by_role("button", name="Save changes").click()
    page.locator("tr", has_text="editable").filter(has_text="90 req/min").wait_for()
    key = next(k for k in dash.client().get("/keys").json()["keys"] if k["id"] == created["id"])
    assert (key["model_pool"], key["optimize_mode"], key["rpm_limit"], key["tpm_limit"]) == (
        ["demo-extractor"],
        "latency",
        90,
        50000,
    )


def test_an_owner_adds_a_user_and_a_viewer_cannot_see_users(page, dash, shots):
    page.goto("/ui/users")
    page.get_by_label("Username").fill("vic")
    page.get_by_label("Role", exact=True).select_option("member")
    page.get_by_role("button", name="Add user").click()
    expect(page.locator("#user-created-password")).to_have_value(re.compile(".{12,}"))  # generated, shown once
    password = page.locator("#user-created-password").input_value()
    page.get_by_role("button", name="Done").click()
    row = page.locator("#users-table tr", has_text="vic")
    row.get_by_label("Role of vic").select_option("viewer")
    with page.expect_navigation():  # saved, the page reloads
        row.get_by_role("button", name="Change role of vic").click()
    expect(page.locator("#users-table tr", has_text="vic").get_by_label("Role of vic")).to_have_value("viewer")
    admin_row = page.locator("#users-table tr", has_text="admin")
    admin_row.get_by_label("Role of admin").select_option("member")  # the last owner: the API refuses
    admin_row.get_by_role("button", name="Change role of admin").click()
    expect(page.locator("#page-error")).to_contain_text("at least one enabled owner")
    expect(admin_row.get_by_label("Role of admin")).to_have_value("owner")  # shows the role it kept
    snap(page, shots, "users")

    viewer = page.context.browser.new_context(viewport=DESKTOP, base_url=dash.url)
    tab = viewer.new_page()
    sign_in(tab, "vic", password)
    assert tab.get_by_role("link", name="Users").count() == 0 and "vic · viewer" in tab.locator(".whoami").inner_text()
    assert tab.goto("/ui/users").status == 403
    assert "needs the owner role" in tab.locator("#main").inner_text()
    viewer.close()

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#users-table tr", has_text="vic").get_by_role("button", name="Remove vic").click()
    page.locator("#users-table tr", has_text="vic").locator(".badge", has_text="removed").wait_for()


def test_playground_extraction_highlights_the_mentions_with_confidences(page, shots):
    page.goto("/ui/playground")
    page.get_by_label("Model", exact=True).first.select_option("demo-extractor")
    page.get_by_label("Text").fill(SENTENCE)
    page.get_by_role("button", name="Extract").click()
    marks = page.locator("#extract-highlight mark")
    marks.first.wait_for()
    found = {m.get_attribute("data-label"): m.inner_text() for m in marks.all()}
    assert found.get("person", "").startswith("Anna Schmidt"), found
    assert re.search(r"person: Anna Schmidt \d+%", page.locator("#extract-mentions").inner_text())
    assert "open in history" in page.locator("#extract-meta").inner_text()
    snap(page, shots, "playground-extraction")


def test_playground_chat_streams_with_the_routing_decision_cost_and_latency(page, shots):
    page.get_by_label("Model", exact=True).nth(1).select_option("auto")
    page.get_by_label("Message").fill("Say hello to the team.")
    page.get_by_label("Max tokens").fill("12")
    page.get_by_role("button", name="Send").click()
    meta = page.locator("#chat-meta")
    expect(meta).to_contain_text("cost")
    routing = page.locator("#chat-routing").inner_text()
    assert "Routed to" in routing and "Task" in routing and "Complexity" in routing
    assert page.locator("#chat-output").inner_text().strip()
    assert re.search(r"\d+ ms total", meta.inner_text()) and "$" in meta.inner_text()
    snap(page, shots, "playground-chat")


def test_the_extraction_is_found_in_history_and_corrected(page, dash, shots):
    page.goto("/ui/history?model_id=demo-extractor")
    rows = page.locator("#history-table tbody tr")
    assert rows.count() == 1
    snap(page, shots, "history")
    rows.first.get_by_role("link").click()
    page.wait_for_url(re.compile(r"/ui/history/inf_"))
    assert page.locator("#record-text mark").count() >= 1
    page.get_by_label("Incorrect").check()
    page.get_by_label(re.compile("Corrected output")).fill(json.dumps(CORRECTION))
    page.get_by_label("Notes").fill("the company was missed")
    page.get_by_role("button", name="Save feedback").click()
    page.locator("#feedback-saved", has_text="Saved.").wait_for()
    snap(page, shots, "history-record")
    inference_id = page.url.rsplit("/", 1)[1]
    record = dash.client().get(f"/inferences/{inference_id}").json()
    assert record["feedback"]["verdict"] == "incorrect"
    assert record["feedback"]["corrected_output"]["entities"]["company"][0] in ("Siemens", {"text": "Siemens"})
    page.reload()
    expect(page.locator("#feedback-current")).to_contain_text("incorrect")


def ner_lines(count: int) -> str:
    lines = []
    for i in range(count):
        person, company = ["Anna Schmidt", "Tim Cook", "Yuki Tanaka"][i % 3], ["Sony", "Apple", "Nokia"][i % 3]
        text = f"{person} works for {company} (example {i})."
        entities = [
            {"start": 0, "end": len(person), "label": "person", "text": person},
            {"start": (at := text.index(company)), "end": at + len(company), "label": "company", "text": company},
        ]
        lines.append(json.dumps({"text": text, "entities": entities}))
    return "\n".join(lines) + "\n"


def test_a_dataset_upload_names_the_bad_line_and_a_good_one_is_paged(page, tmp_path, shots):
    bad = tmp_path / "bad.jsonl"
    broken = {"text": "Apple", "entities": [{"start": 0, "end": 3, "label": "x", "text": "Apple"}]}
    bad.write_text(ner_lines(1) + json.dumps(broken) + "\n")
    good = tmp_path / "people.jsonl"
    good.write_text(ner_lines(45))
    page.goto("/ui/datasets")
    assert "No datasets yet" in page.content()
    form = page.locator("#upload-form")
    form.get_by_label("Dataset name").fill("people")
    form.get_by_label("Task type").select_option("ner")
    form.get_by_label("File").set_input_files(str(bad))
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-error")).to_contain_text("line 2")
    snap(page, shots, "datasets-upload-error")
    form.get_by_label("File").set_input_files(str(good))
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url(re.compile(r"/ui/datasets/people\?version=1"))
    assert "Page 1 of 3" in page.locator(".pager").inner_text()
    assert page.locator("#examples li").count() == 20
    snap(page, shots, "dataset")
    page.get_by_role("link", name="Next →").click()
    page.wait_for_url(re.compile(r"page=2"))
    assert "example 20)" in page.locator("#examples li").first.inner_text()
    page.goto("/ui/datasets")
    assert page.locator("#datasets-table", has_text="people").count() == 1
    snap(page, shots, "datasets")


def test_a_dataset_is_deleted_after_confirmation(page, dash):
    upload = dash.client().post(
        "/datasets", data={"name": "scratch", "task_type": "ner"}, files={"file": ("s.jsonl", ner_lines(3))}
    )
    assert upload.status_code == 201, upload.text
    page.goto("/ui/datasets/scratch")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Delete this dataset").click()
    assert dash.client().get("/datasets/scratch").status_code == 200  # a cancelled confirmation deletes nothing
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete this dataset").click()
    page.wait_for_url(re.compile(r"/ui/datasets$"))
    assert page.locator("#datasets-table", has_text="scratch").count() == 0
    assert dash.client().get("/datasets/scratch").status_code == 404


def test_a_generation_job_shows_its_progress_and_its_version(page, dash, shots):
    page.goto("/ui/datasets")
    form = page.locator("#generate-form")
    form.get_by_label("Dataset name").fill("gen-people")
    form.get_by_label("Examples").fill("2")
    form.get_by_label(re.compile("Labels")).fill("person, company")
    form.get_by_label("Domain description").fill("Short tech news sentences naming executives and their companies.")
    page.get_by_role("button", name="Start generation").click()
    page.wait_for_url(re.compile(r"/ui/generation/"))
    expect(page.locator("#gen-status")).to_have_text("complete", timeout=600_000)
    link = page.locator("#gen-version a")
    expect(link).to_have_text("gen-people v1")
    assert re.match(r"[12] of 2 examples", page.locator("#gen-count").inner_text())
    expect(page.locator("#gen-stop")).to_be_hidden()  # nothing left to stop
    snap(page, shots, "generation-job")
    link.click()
    page.wait_for_url(re.compile(r"/ui/datasets/gen-people\?version=1"))
    assert page.locator("#examples li").count() >= 1
    page.goto("/ui/datasets")
    assert page.locator("#generation-table", has_text="gen-people v1").count() == 1


def test_a_training_job_shows_its_progress_and_loss_and_stops(page, shots):
    page.goto("/ui/training")
    page.get_by_label("Model name").fill("people-ner")
    page.get_by_label("Base model").select_option(MINILM)
    datasets = page.locator("#t-datasets")
    datasets.get_by_label("gen-people").uncheck()
    datasets.get_by_label("people", exact=True).check()
    page.get_by_label(re.compile("Epochs")).fill("30")
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url(re.compile(r"/ui/training/ft_"))
    # (No wait_for_function: it evaluates a string, which the pages' Content-Security-Policy refuses.)
    expect(page.locator("#job-steps")).to_contain_text(re.compile(r"step ([3-9]|\d\d+) of"), timeout=180_000)
    page.locator("#loss-chart canvas").wait_for(timeout=60_000)
    assert re.match(r"\d+\.\d{4}", page.locator("#job-loss").inner_text())
    # After the first epoch: a checkpoint with its validation metrics, charted and listed, and the log tail.
    checkpoint = page.locator("#checkpoints-table tbody tr").first
    checkpoint.wait_for(timeout=240_000)
    page.locator("#metrics-chart canvas").wait_for()
    assert "f1" in checkpoint.inner_text()
    expect(page.locator("#log-tail")).to_contain_text("checkpoint ckpt_")
    snap(page, shots, "training-job")
    with page.expect_download() as download:
        checkpoint.get_by_role("link", name=re.compile("^Download")).click()
    assert zipfile.is_zipfile(download.value.path())
    checkpoint_id = checkpoint.get_attribute("data-checkpoint-id")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Stop training").click()
    page.locator("#job-status", has_text="stopped").wait_for(timeout=60_000)
    job_url = page.url
    page.goto(f"/ui/training?from={checkpoint_id}")  # "Continue training" offers the checkpoint as the base
    expect(page.get_by_label("Base model")).to_have_value(checkpoint_id)
    assert page.locator("#jobs-table", has_text="people-ner").count() == 1
    snap(page, shots, "training")
    page.goto(job_url)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete job").click()
    page.wait_for_url(re.compile(r"/ui/training$"))
    assert page.locator("#jobs-table", has_text="people-ner").count() == 0


def test_usage_totals_the_calls_and_exports_csv(page, shots):
    page.goto("/ui/usage")
    requests = int(page.locator("#usage-requests").inner_text().replace(",", ""))
    assert requests >= 2 and page.locator("#usage-table tbody tr").count() == requests
    snap(page, shots, "usage")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0].startswith("created_at,id,inference_id") and len(lines) == requests + 1
    page.goto("/ui/usage?model_id=demo-extractor")
    assert page.locator("#usage-requests").inner_text() == "1"


def test_overview_models_and_the_phone_layout(page, shots):
    page.goto("/ui/?period=day")
    assert int(page.locator("#stat-requests").inner_text()) >= 2
    assert page.locator("#stat-p95").inner_text().endswith("ms")
    page.locator("#overview-chart canvas").wait_for()
    snap(page, shots, "overview")
    page.goto("/ui/models")
    page.locator("tr", has_text="demo-extractor").get_by_role("button", name="Check").click()
    page.locator('.badge.health[data-model="demo-extractor"]', has_text="ready").wait_for()
    snap(page, shots, "models")
    page.set_viewport_size(PHONE)
    paths = ["/ui/", "/ui/keys", "/ui/history", "/ui/usage", "/ui/models", "/ui/datasets", "/ui/playground"]
    for path in ["/ui/users", "/ui/training", *paths]:  # the playground last: its screenshot follows
        page.goto(path)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], path
    snap(page, shots, "phone-playground")
    page.set_viewport_size(DESKTOP)


def test_keyboard_reaches_the_navigation_and_sign_out_lands_on_sign_in(page, shots):
    page.goto("/ui/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.get_by_role("button", name="Sign out").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/ui/login$"))
    page.goto("/ui/history")
    assert page.url.endswith("/ui/login?next=%2Fui%2Fhistory")


def test_no_page_logged_a_script_error_or_a_content_security_policy_violation(page):
    # Failed API calls (the wrong password, the refused upload) log their HTTP status: those are expected.
    expected = ("status of 401", "status of 409", "status of 422")  # the refused password, last owner, bad inputs
    unexpected = [m for m in page.console_errors if not any(e in m for e in expected)]
    assert not unexpected
