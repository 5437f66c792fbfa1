"""``outrider deployments ...`` and ``outrider inferences judge``: the adaptive loop's switches and verdicts,
over a running server's HTTP API with a key (like ``outrider datasets``)."""

from __future__ import annotations

import typer

from outrider.cli.datasets import ApiKey, Url, api_client, checked

deployments_app = typer.Typer(help="Stable model names (@name): list, point at a model, show history, roll back.")
inferences_app = typer.Typer(help="Inference history: judge a record with an LLM.")

Note = typer.Option(None, "--note", help="Why: kept in the deployment's history.")


def _path(name: str) -> str:
    return f"/deployments/{name.removeprefix('@')}"


def _event_line(event: dict) -> str:
    before = f" (was {event['previous_target']})" if event["previous_target"] else ""
    note = f"  note: {event['note']}" if event["note"] else ""
    when = event["switched_at"][:19].replace("T", " ")  # ISO 8601 in UTC, to the second
    return f"{when}  {event['action']:<8} {event['target']}{before}  by {event['switched_by']}{note}"


@deployments_app.command("list")
def list_deployments(url: str = Url, api_key: str = ApiKey) -> None:
    """This account's deployments: the name clients call, the model it serves now, how often it was set."""
    with api_client(url, api_key) as client:
        listed = checked(client.get("/deployments"))["data"]
    if not listed:
        typer.secho("no deployments yet: outrider deployments set NAME MODEL_ID", err=True)
    for d in listed:
        typer.echo(f"{d['model']:<32} {d['target']:<40} v{d['version']}")


@deployments_app.command("set")
def set_deployment(
    name: str = typer.Argument(..., help="The deployment's name (with or without its '@')."),
    model_id: str = typer.Argument(..., help="What it serves: a model, a training job (ft_...) or a checkpoint."),
    note: str | None = Note,
    url: str = Url,
    api_key: str = ApiKey,
) -> None:
    """Create the deployment or switch it: the next call to @name is answered by MODEL_ID."""
    body = {"model_id": model_id, **({"note": note} if note else {})}
    with api_client(url, api_key) as client:
        before = client.get(_path(name))
        d = checked(client.put(_path(name), json=body))
    if before.status_code == 404:
        typer.echo(f"created {d['model']} -> {d['target']}")
    elif d["version"] == checked(before)["version"]:
        typer.echo(f"{d['model']} already serves {d['target']}")
    else:
        typer.echo(f"switched {d['model']}: {checked(before)['target']} -> {d['target']} (version {d['version']})")


@deployments_app.command("history")
def history(
    name: str = typer.Argument(..., help="The deployment's name."), url: str = Url, api_key: str = ApiKey
) -> None:
    """Every change of the deployment's target, newest first: when, what, who, why."""
    with api_client(url, api_key) as client:
        d = checked(client.get(_path(name)))
    typer.echo(f"{d['model']} serves {d['target']} (version {d['version']})")
    for event in d["history"]:
        typer.echo(_event_line(event))


@deployments_app.command("rollback")
def rollback(
    name: str = typer.Argument(..., help="The deployment's name."),
    note: str | None = Note,
    url: str = Url,
    api_key: str = ApiKey,
) -> None:
    """Point the deployment back at the target it had before its current one."""
    with api_client(url, api_key) as client:
        d = checked(client.post(f"{_path(name)}/rollback", json={"note": note} if note else None))
    typer.echo(f"rolled back {d['model']}: {d['history'][0]['previous_target']} -> {d['target']}")


@inferences_app.command("judge")
def judge(
    inference_id: str = typer.Argument(..., help="The record's id (inf_...)."),
    judge_model: str = typer.Option(..., "--judge-model", "-j", help="A decoder this key may call."),
    url: str = Url,
    api_key: str = ApiKey,
) -> None:
    """Have an LLM judge a record now: its verdict, score and reasoning land on the record."""
    with api_client(url, api_key) as client:
        verdict = checked(client.post(f"/inferences/{inference_id}/judge", json={"judge_model": judge_model}))
    score = verdict["llmaj_score"]
    typer.echo(f"{verdict['inference_id']}: {verdict['llmaj_verdict']} (score {score if score is not None else '-'})")
    if verdict["llmaj_reasoning"]:
        typer.echo(verdict["llmaj_reasoning"])
