"""``outrider datasets ...`` and ``outrider generate``: talk to a running server over HTTP, like ``infer``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import typer

datasets_app = typer.Typer(help="Push, pull, list and delete datasets on a running server.")

Url = typer.Option("http://127.0.0.1:8000", "--url", envvar="OUTRIDER_URL", help="Server URL.")
ApiKey = typer.Option(..., "--api-key", envvar="OUTRIDER_API_KEY", help="API key (or OUTRIDER_API_KEY).")
FORMATS = {".conll": "conll", ".csv": "csv"}


def api_client(url: str, api_key: str):
    import httpx

    return httpx.Client(base_url=url.rstrip("/"), headers={"X-API-Key": api_key}, timeout=600)


def checked(response) -> dict:
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        typer.secho(f"error {response.status_code}: {detail}", fg="red", err=True)
        raise typer.Exit(1)
    return response.json()


@datasets_app.command("push")
def push(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSONL, CoNLL (BIO) or CSV (text,label)."),
    name: str = typer.Option(..., "--name", "-n", help="Dataset name (a new version if it exists)."),
    task_type: str | None = typer.Option(None, "--task-type", "-t", help="ner, classification, structures, ..."),
    fmt: str | None = typer.Option(None, "--format", "-f", help="jsonl, conll or csv (default: from the extension)."),
    url: str = Url,
    api_key: str = ApiKey,
) -> None:
    """Upload a file as the next version of a dataset."""
    fmt = fmt or FORMATS.get(file.suffix.lower(), "jsonl")
    data = file.read_bytes()
    with api_client(url, api_key) as client:
        if fmt == "jsonl":
            if not task_type:
                typer.secho("--task-type is required for JSONL", fg="red", err=True)
                raise typer.Exit(2)
            response = client.post(
                "/datasets", params={"name": name, "task_type": task_type}, content=file.read_bytes()
            )
        else:
            response = client.post("/datasets/import", params={"name": name, "format": fmt}, content=data)
    version = checked(response)
    typer.echo(
        f"{version['name']} v{version['version']}: {version['example_count']} {version['task_type']} examples "
        f"({version['byte_size']} bytes, sha256 {version['sha256'][:12]})"
    )


@datasets_app.command("pull")
def pull(
    name: str = typer.Argument(..., help="Dataset name."),
    version: str = typer.Option("latest", "--version", "-v", help="Version number (default: the latest)."),
    output: Path = typer.Option(..., "--output", "-o", help="File to write ('-' for stdout)."),
    url: str = Url,
    api_key: str = ApiKey,
) -> None:
    """Download a version's JSONL, byte for byte."""
    with api_client(url, api_key) as client, client.stream("GET", f"/datasets/{name}/versions/{version}/download") as r:
        if r.status_code >= 400:
            r.read()
            checked(r)
        if str(output) == "-":
            for chunk in r.iter_bytes():
                sys.stdout.buffer.write(chunk)
            return
        size = 0
        with open(output, "wb") as handle:
            for chunk in r.iter_bytes():
                handle.write(chunk)
                size += len(chunk)
    typer.secho(f"wrote {output} ({size} bytes, version {r.headers.get('x-dataset-version')})", err=True)


@datasets_app.command("list")
def list_datasets(url: str = Url, api_key: str = ApiKey) -> None:
    """List this account's datasets with their latest version."""
    with api_client(url, api_key) as client:
        datasets = checked(client.get("/datasets"))["datasets"]
    for d in datasets:
        typer.echo(f"{d['name']:<32} v{d['latest_version']:<4} {d['task_type']:<15} {d['example_count']:>8} examples")


@datasets_app.command("delete")
def delete(
    name: str = typer.Argument(..., help="Dataset name."),
    version: str | None = typer.Option(None, "--version", "-v", help="Delete only this version."),
    url: str = Url,
    api_key: str = ApiKey,
) -> None:
    """Delete a dataset (every version) or one version."""
    path = f"/datasets/{name}" + (f"/versions/{version}" if version else "")
    with api_client(url, api_key) as client:
        deleted = checked(client.delete(path))
    typer.echo(f"deleted {deleted['name']} versions {deleted['deleted_versions']}")


def generate(
    task_type: str = typer.Option(..., "--task-type", "-t", help="ner, classification or decoder."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Dataset name to write (a new version)."),
    num_examples: int = typer.Option(..., "--num-examples", "-n", help="How many examples to generate."),
    labels: str | None = typer.Option(None, "--labels", "-l", help="Comma-separated labels / entity types."),
    domain: str | None = typer.Option(None, "--domain", help="What the examples are about."),
    prompt: str | None = typer.Option(None, "--prompt", help="Instruction for decoder examples."),
    examples_file: Path | None = typer.Option(None, "--examples", help="JSON list of classified examples."),
    teacher: str | None = typer.Option(None, "--teacher", help="Teacher model id (default: the server's)."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow the job with a progress bar."),
    url: str = Url,
    api_key: str = ApiKey,
) -> None:
    """Start a synthetic data generation job and follow it until it ends."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    body = {
        "task_type": task_type,
        "dataset_name": dataset,
        "num_examples": num_examples,
        "labels": [label.strip() for label in labels.split(",")] if labels else [],
        "domain_description": domain,
        "prompt": prompt,
        "classified_examples": json.loads(examples_file.read_text()) if examples_file else [],
        "teacher_model": teacher,
    }
    with api_client(url, api_key) as client:
        job_id = checked(client.post("/generate", json={k: v for k, v in body.items() if v is not None}))["job_id"]
        typer.secho(f"job {job_id} queued", err=True)
        if not wait:
            typer.echo(job_id)
            return
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, transient=False) as progress:
            bar = progress.add_task("queued", total=num_examples)
            while True:
                job = checked(client.get(f"/generate/jobs/{job_id}"))
                progress.update(bar, completed=job["num_examples"], description=job["status"])
                if job["status"] in ("complete", "failed", "stopped"):
                    break
                time.sleep(1.0)
    where = f"{job['dataset_name']} v{job['dataset_version']}" if job["dataset_version"] else job["dataset_name"]
    typer.echo(f"{job['status']}: {job['num_examples']} examples in {where}")
    if job["status"] == "failed":
        typer.secho(f"reason: {job['error']}", fg="red", err=True)
        raise typer.Exit(1)


@datasets_app.command("from-inferences")
def from_inferences(
    name: str = typer.Argument(..., help="The dataset to append a version to (created with --task-type)."),
    model_id: str | None = typer.Option(None, "--model-id", "-m", help="Records of calls to this id ('@name' too)."),
    project_id: str | None = typer.Option(None, "--project-id", help="Records of this project."),
    human_verdict: str = typer.Option("reviewed", "--human-verdict", help="incorrect, correct or reviewed (both)."),
    since: str | None = typer.Option(None, "--since", help="Records from this time on (ISO 8601)."),
    until: str | None = typer.Option(None, "--until", help="Records before this time (ISO 8601)."),
    task_type: str | None = typer.Option(None, "--task-type", "-t", help="Required when the dataset is new."),
    classification_task: str | None = typer.Option(None, "--classification-task", help="Which schema task."),
    max_records: int | None = typer.Option(None, "--max-records", help="At most this many records, newest first."),
    include_judge_passed: bool = typer.Option(False, "--include-judge-passed", help="Also judge-passed records."),
    judge_score_min: float | None = typer.Option(None, "--judge-score-min", help="Of those: at least this score."),
    url: str = Url,
    api_key: str = ApiKey,
) -> None:
    """Append a dataset version built from reviewed inference records (corrections and confirmed outputs)."""
    body = {
        "model_id": model_id,
        "project_id": project_id,
        "human_verdict": human_verdict,
        "since": since,
        "until": until,
        "task_type": task_type,
        "classification_task": classification_task,
        "max_records": max_records,
        "include_judge_passed": include_judge_passed or None,
        "llmaj_score_min": judge_score_min,
    }
    with api_client(url, api_key) as client:
        built = checked(
            client.post(f"/datasets/{name}/from-inferences", json={k: v for k, v in body.items() if v is not None})
        )
    made = (
        f"v{built['version']['version']} ({built['version']['example_count']} examples)"
        if built["version"]
        else "no new version"
    )
    typer.echo(
        f"{built['name']} {made}: {built['records']} records, {built['added']} added, "
        f"{built['skipped_duplicates']} duplicates skipped, {built['unfit_count']} unfit"
    )
    for unfit in built["unfit"]:
        typer.echo(f"  unfit {unfit['inference_id']}: {unfit['reason']}")
