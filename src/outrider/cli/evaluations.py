"""``outrider evaluations run|show|compare``: score models on a dataset version and compare them, over a
running server's HTTP API (an evaluation is a job on its worker)."""

from __future__ import annotations

import time
from typing import Any

import typer

from outrider.cli.datasets import ApiKey, Url, api_client, checked

evaluations_app = typer.Typer(help="Evaluate models on a dataset version; per-label figures and comparisons.")
FINISHED = ("complete", "failed", "stopped")


def _figure(value: Any, signed: bool = False) -> str:
    if not isinstance(value, int | float):
        return "" if value is None else str(value)
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def print_evaluation(evaluation: dict[str, Any], console: Any) -> None:
    """Each model's headline figures, latency and per-label table (and a classification's confusion matrix)."""
    from rich.table import Table

    d = evaluation["dataset"]
    console.print(
        f"{evaluation['id']}: {evaluation['status']} on {d['name']} v{d['version']} ({d['examples']} examples)"
    )
    if evaluation["error"]:
        console.print(f"error: {evaluation['error']}")
    for result in evaluation["results"]:
        metrics = result["metrics"]
        # Top-level figures (accuracy, a decoder's rates) and the extraction averages, where the task has them.
        headline = {k.replace("_", " "): v for k, v in metrics.items() if isinstance(v, int | float)}
        headline.update({f"{k} f1": metrics[k]["f1"] for k in ("micro", "macro") if isinstance(metrics.get(k), dict)})
        shown = ", ".join(f"{k} {_figure(v)}" for k, v in headline.items() if v is not None)
        latency = result["latency_ms"]
        served = result["model_id"] + (
            f" -> {result['model_used']}" if result["model_used"] != result["model_id"] else ""
        )
        console.print(
            f"\n[bold]{served}[/bold]: {shown}; latency p50 {latency['p50']:.1f} ms, p95 {latency['p95']:.1f} ms"
        )
        if not metrics.get("per_label"):
            continue
        table = Table(title=f"per label: {result['model_id']}")
        for column in ("label", "precision", "recall", "f1", "support"):
            table.add_column(column, justify="left" if column == "label" else "right")
        for label, figures in sorted(metrics["per_label"].items()):
            table.add_row(label, *[_figure(figures.get(k)) for k in ("precision", "recall", "f1", "support")])
        console.print(table)
        matrix = metrics.get("confusion_matrix")
        if matrix:
            grid = Table(title="confusion matrix (rows: gold, columns: predicted)")
            grid.add_column("gold")
            for label in matrix["labels"]:
                grid.add_column(label, justify="right")
            for label, row in zip(matrix["labels"], matrix["matrix"], strict=True):
                grid.add_row(label, *[str(n) for n in row])
            console.print(grid)


def print_comparison(comparison: dict[str, Any], console: Any) -> None:
    """The paired bootstrap of the headline figures and the per-label differences (candidate minus baseline)."""
    from rich.table import Table

    console.print(
        f"\n[bold]{comparison['candidate']}[/bold] against [bold]{comparison['baseline']}[/bold] "
        f"({comparison['examples']} examples, {comparison['resamples']} paired bootstrap resamples)"
    )
    figures = Table(title="figures")
    for column in ("figure", "baseline", "candidate", "difference", "95% interval", "p"):
        figures.add_column(column, justify="left" if column == "figure" else "right")
    for name, f in comparison["figures"].items():
        interval = f"[{_figure(f['ci95'][0], True)}, {_figure(f['ci95'][1], True)}]"
        figures.add_row(
            name,
            _figure(f["baseline"]),
            _figure(f["candidate"]),
            _figure(f["difference"], True),
            interval,
            _figure(f["p_value"]),
        )
    console.print(figures)
    if not comparison.get("per_label"):
        return
    labels = Table(title="per label (candidate minus baseline)")
    for column in ("label", "f1 baseline", "f1 candidate", "f1", "precision", "recall"):
        labels.add_column(column, justify="left" if column == "label" else "right")
    for label, d in sorted(comparison["per_label"].items()):
        labels.add_row(
            label,
            _figure(d["f1"]["baseline"]),
            _figure(d["f1"]["candidate"]),
            *[_figure(d[k]["difference"], True) for k in ("f1", "precision", "recall")],
        )
    console.print(labels)


@evaluations_app.command("run")
def run(
    models: list[str] = typer.Argument(
        ..., help="1 to 5 model ids; the first is the baseline the others are compared with."
    ),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Dataset name."),
    version: int | None = typer.Option(None, "--version", "-v", help="Version (default: the latest)."),
    max_examples: int | None = typer.Option(None, "--max-examples", help="Score the first N examples."),
    threshold: float | None = typer.Option(None, "--threshold", help="Extraction threshold (default 0.5)."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait for the figures and print them."),
    url: str = Url,
    api_key: str = ApiKey,
) -> None:
    """Queue an evaluation; wait for it and print every model's figures and the comparisons."""
    from rich.console import Console

    console = Console()
    body = {
        "models": models,
        "dataset": dataset,
        "version": version,
        "max_examples": max_examples,
        "threshold": threshold,
    }
    with api_client(url, api_key) as client:
        evaluation = checked(client.post("/evaluations", json={k: v for k, v in body.items() if v is not None}))
        typer.secho(f"evaluation {evaluation['id']} queued", err=True)
        if not wait:
            typer.echo(evaluation["id"])
            return
        while evaluation["status"] not in FINISHED:
            time.sleep(1.0)
            evaluation = checked(client.get(f"/evaluations/{evaluation['id']}"))
    print_evaluation(evaluation, console)
    for comparison in evaluation["comparisons"]:
        print_comparison(comparison, console)
    if evaluation["status"] != "complete":
        raise typer.Exit(1)


@evaluations_app.command("show")
def show(evaluation_id: str = typer.Argument(..., help="eval_..."), url: str = Url, api_key: str = ApiKey) -> None:
    """An evaluation's status and, per model, its figures and per-label table."""
    from rich.console import Console

    with api_client(url, api_key) as client:
        evaluation = checked(client.get(f"/evaluations/{evaluation_id}"))
    print_evaluation(evaluation, Console())


@evaluations_app.command("list")
def list_evaluations(
    limit: int = typer.Option(20, "--limit", help="How many, newest first."), url: str = Url, api_key: str = ApiKey
) -> None:
    """This account's evaluations, newest first."""
    with api_client(url, api_key) as client:
        listed = checked(client.get("/evaluations", params={"limit": limit}))["evaluations"]
    for e in listed:
        models = ", ".join(m["model_id"] for m in e["models"])
        typer.echo(f"{e['id']}  {e['status']:<8} {e['dataset']['name']} v{e['dataset']['version']}  {models}")


@evaluations_app.command("compare")
def compare(
    evaluation_id: str = typer.Argument(..., help="An evaluation of two or more models."),
    candidate: str | None = typer.Option(
        None, "--candidate", "-c", help="Which model against the baseline (default: each)."
    ),
    url: str = Url,
    api_key: str = ApiKey,
) -> None:
    """Models of one evaluation against its first: per-label differences and the paired bootstrap figures."""
    from rich.console import Console

    with api_client(url, api_key) as client:
        evaluation = checked(client.get(f"/evaluations/{evaluation_id}"))
    chosen = [c for c in evaluation["comparisons"] if candidate is None or c["candidate"] == candidate]
    if not chosen:
        why = f"no comparison with '{candidate}'" if candidate else "no comparison (one model, or not complete)"
        typer.secho(f"{evaluation_id}: {why}; status {evaluation['status']}", fg="red", err=True)
        raise typer.Exit(1)
    console = Console()
    for comparison in chosen:
        print_comparison(comparison, console)
