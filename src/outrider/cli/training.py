"""``outrider train`` and ``outrider eval``: fine-tune through a running server's HTTP API.

``train`` creates a job, follows it with a live progress bar (step / total, epoch, loss) and prints the
final metrics; ``eval`` fine-tunes on WNUT-17 and Banking77 and compares with spaCy and TF-IDF + logistic
regression trained on the same data (``cli/finetune_eval.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from outrider.cli.follow import JOBS, follow_job

Url = typer.Option("http://127.0.0.1:8000", "--url", envvar="OUTRIDER_URL", help="Server URL (or OUTRIDER_URL).")
ApiKey = typer.Option(..., "--api-key", envvar="OUTRIDER_API_KEY", help="API key (or OUTRIDER_API_KEY).")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("eval")(evaluate)


def parse_dataset(value: str) -> dict[str, Any]:
    """``NAME`` or ``NAME:VERSION``."""
    name, _, version = value.partition(":")
    ref: dict[str, Any] = {"name": name}
    if version:
        ref["version"] = int(version) if version.isdigit() else version
    return ref


def print_metrics(job: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    metrics = job.get("metrics") or {}
    overall = {k: v for k, v in metrics.items() if isinstance(v, int | float)}
    if overall:
        table = Table(title=f"metrics of {job['id']} (held-out split)")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for name, value in overall.items():
            table.add_row(name, f"{value:.4f}" if isinstance(value, float) else str(value))
        console.print(table)
    per_label = metrics.get("per_label") or {}
    if per_label:
        names = sorted({k for figures in per_label.values() for k in figures})
        table = Table(title="per label")
        table.add_column("label")
        for name in names:
            table.add_column(name, justify="right")
        for label, figures in per_label.items():
            table.add_row(label, *[_cell(figures.get(name)) for name in names])
        console.print(table)


def _cell(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("" if value is None else str(value))


def train(
    model_name: str = typer.Option(..., "--model-name", "-n", help="A name for the trained model."),
    base_model: str = typer.Option(..., "--base-model", "-b", help="Id from GET /base-models or a checkpoint id."),
    dataset: list[str] = typer.Option(..., "--dataset", "-d", help="NAME or NAME:VERSION (repeatable)."),
    training_type: str = typer.Option("lora", "--training-type", "-t", help="lora or full."),
    epochs: int | None = typer.Option(None, "--epochs", "-e", help="Epochs (default: the base model's)."),
    learning_rate: float | None = typer.Option(None, "--learning-rate", "--lr", help="Learning rate."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Batch size."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split, the order and the initialisation."),
    validation_fraction: float = typer.Option(0.1, "--validation-fraction", help="Share held out for metrics."),
    early_stopping_patience: int | None = typer.Option(
        None, "--early-stopping-patience", help="Stop after this many epochs without a better validation F1."
    ),
    head_learning_rate: float | None = typer.Option(
        None, "--head-learning-rate", help="Encoders: the extraction heads' rate (default 1e-2)."
    ),
    entity_label_renaming: float | None = typer.Option(
        None, "--entity-label-renaming", help="Encoders: chance of renaming entity types in an example (0-1)."
    ),
    detach: bool = typer.Option(False, "--detach", help="Print the job id and return without following it."),
    url: str = Url,
    api_key: str = ApiKey,
) -> None:
    """Start a fine-tuning job on a running server, follow it with a progress bar, print its metrics."""
    import httpx
    from rich.console import Console

    console = Console()
    body = {
        "model_name": model_name,
        "base_model": base_model,
        "datasets": [parse_dataset(d) for d in dataset],
        "training_type": training_type,
        "nr_epochs": epochs,
        "learning_rate": learning_rate,
        "batch_size": batch_size,
        "seed": seed,
        "validation_fraction": validation_fraction,
        "early_stopping_patience": early_stopping_patience,
        "head_learning_rate": head_learning_rate,
        "entity_label_renaming": entity_label_renaming,
    }
    with httpx.Client(base_url=url.rstrip("/"), headers={"X-API-Key": api_key}, timeout=60) as client:
        response = client.post(JOBS, json={k: v for k, v in body.items() if v is not None})
        if response.status_code != 201:
            typer.secho(f"{response.status_code}: {response.json().get('detail')}", fg="red", err=True)
            raise typer.Exit(1)
        job = response.json()
        console.print(f"job [bold]{job['id']}[/bold] ({job['task_type']} on {job['base_model']}, {training_type})")
        if detach:
            typer.echo(job["id"])
            return
        try:
            job = follow_job(client, job["id"], console)
        except KeyboardInterrupt:
            console.print(f"\nthe job goes on; stop it with: curl -X POST {url}{JOBS}/{job['id']}/stop")
            raise typer.Exit(130) from None
    if job["status"] != "complete":
        reason = job.get("error") or job.get("stop_reason") or ""
        typer.secho(f"job {job['id']} {job['status']}{': ' + reason if reason else ''}", fg="red", err=True)
        print_metrics(job, console)
        raise typer.Exit(1)
    print_metrics(job, console)
    console.print(f"model id: [bold]{job['model_id']}[/bold] (use it as model_id / model on any inference surface)")


def evaluate(
    url: str | None = typer.Option(
        None, "--url", envvar="OUTRIDER_URL", help="A running server; default: start one in a temporary folder."
    ),
    api_key: str | None = typer.Option(None, "--api-key", envvar="OUTRIDER_API_KEY", help="Its API key."),
    data: Path = typer.Option(Path("../shared/data"), "--data", help="Folder with wnut17/ and banking77/."),
    task: list[str] = typer.Option(["wnut17", "banking77"], "--task", help="wnut17 and/or banking77 (repeatable)."),
    train_limit: int | None = typer.Option(None, "--train-limit", help="Use at most this many training examples."),
    test_limit: int | None = typer.Option(None, "--test-limit", help="Score at most this many test examples."),
    epochs: int | None = typer.Option(None, "--epochs", help="Fine-tuning epochs (default: the trainer's)."),
    training_type: str = typer.Option("full", "--training-type", help="lora or full."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Fine-tuning batch size."),
    learning_rate: float | None = typer.Option(None, "--learning-rate", help="Fine-tuning learning rate."),
    early_stopping_patience: int | None = typer.Option(
        None, "--early-stopping-patience", help="Fine-tuning: epochs without a better validation F1 before stopping."
    ),
    head_learning_rate: float | None = typer.Option(
        None, "--head-learning-rate", help="Encoders: the extraction heads' rate (default 1e-2)."
    ),
    entity_label_renaming: float | None = typer.Option(
        None, "--entity-label-renaming", help="Encoders: chance of renaming entity types in an example (0-1)."
    ),
    validation_fraction: float = typer.Option(0.1, "--validation-fraction", help="The job's validation share."),
    peer_epochs: int = typer.Option(20, "--peer-epochs", help="spaCy NER training epochs."),
    base_models_dir: Path | None = typer.Option(None, "--base-models-dir", help="Reuse built base models."),
) -> None:
    """Fine-tune through the API on WNUT-17 (entity F1 on dev) and Banking77 (accuracy on a held-out split),
    next to spaCy NER and TF-IDF + logistic regression trained on the same data; prints a comparison table.
    The peers need the `bench` dependency group (`uv sync --group bench`)."""
    from outrider.cli.finetune_eval import EvalOptions, print_table, run_eval

    options = EvalOptions(
        url=url,
        api_key=api_key,
        data=data,
        tasks=task,
        train_limit=train_limit,
        test_limit=test_limit,
        epochs=epochs,
        training_type=training_type,
        batch_size=batch_size,
        learning_rate=learning_rate,
        early_stopping_patience=early_stopping_patience,
        head_learning_rate=head_learning_rate,
        entity_label_renaming=entity_label_renaming,
        validation_fraction=validation_fraction,
        peer_epochs=peer_epochs,
        base_models_dir=base_models_dir,
    )
    print_table(run_eval(options))
