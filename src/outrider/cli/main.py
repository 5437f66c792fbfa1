"""``outrider``: serve the platform, manage keys and accounts, run inference from the shell."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import typer

from outrider.cli.credits import credits_app
from outrider.cli.datasets import datasets_app, generate
from outrider.cli.deployments import deployments_app, inferences_app
from outrider.cli.evaluations import evaluations_app
from outrider.cli.training import register as register_training_commands
from outrider.cli.users import users_app
from outrider.cli.worker import worker
from outrider.config import Settings, build_settings
from outrider.observability.logs import configure_logging
from outrider.training.demo_data import DEMO_EXAMPLES

log = logging.getLogger("outrider")

app = typer.Typer(
    help="Outrider: data, fine-tuning, serving and a gateway for small task-specific models.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
keys_app = typer.Typer(help="Create, list and revoke API keys (runs against the local database).")
accounts_app = typer.Typer(help="Create and list accounts (runs against the local database).")
app.add_typer(keys_app, name="keys")
app.add_typer(accounts_app, name="accounts")
app.add_typer(credits_app, name="credits")
app.add_typer(users_app, name="users")
app.add_typer(datasets_app, name="datasets")
app.add_typer(deployments_app, name="deployments")
app.add_typer(evaluations_app, name="evaluations")
app.add_typer(inferences_app, name="inferences")
register_training_commands(app)  # outrider train, outrider eval
app.command("generate")(generate)
app.command("worker")(worker)

DataDir = typer.Option(None, "--data-dir", help="Data directory (default: OUTRIDER_DATA_DIR or ./outrider-data).")


def _settings(data_dir: Path | None, **extra: object) -> Settings:
    return build_settings(data_dir=data_dir, **extra)


def _local_services(data_dir: Path | None):
    from outrider.app_state import build_services

    return build_services(_settings(data_dir))


@app.command()
def serve(
    host: str = typer.Option(None, help="Bind address (default 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default 8000)."),
    data_dir: Path | None = DataDir,
    model_dir: list[Path] = typer.Option(None, "--model-dir", help="Folder of saved models to serve (repeatable)."),
    workers: int | None = typer.Option(
        None,
        "--workers",
        help="API processes on the port (default OUTRIDER_API_WORKERS or 1). Above 1 needs PostgreSQL, Redis "
        "(OUTRIDER_REDIS_URL, OUTRIDER_RATE_LIMIT_STORAGE) and no embedded worker.",
    ),
) -> None:
    """Start the server: every API surface on one port, SQLite and packaged models by default."""
    import uvicorn

    from outrider.api.app import create_app
    from outrider.app_state import build_services

    settings = _settings(data_dir, host=host, port=port, model_dirs=model_dir or None, api_workers=workers)
    configure_logging(settings.log_level, settings.log_format)
    problems = settings.sharing_problems() if settings.api_workers > 1 else []
    if problems:
        typer.secho(
            f"cannot serve from {settings.api_workers} API processes: " + "; ".join(problems) + ".",
            fg="red",
            err=True,
        )
        raise typer.Exit(2)
    services = build_services(settings)  # migrates and bootstraps once, before any API process starts
    if services.bootstrap and services.bootstrap.raw_key:
        # A log record (text or JSON, like every line on stderr); the key itself goes to stdout.
        log.warning("created the admin account; its API key, shown once, is on standard output: store it now")
        typer.echo(services.bootstrap.raw_key)
    if services.bootstrap and services.bootstrap.password:
        log.warning("its owner user 'admin' signs in with the password on standard output: store it now")
        typer.echo(services.bootstrap.password)
    log.info("Outrider on http://%s:%s (data: %s)", settings.host, settings.port, settings.data_dir.resolve())
    log.info("dashboard: http://%s:%s/ui/ (sign in as 'admin')", settings.host, settings.port)
    common = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "log_config": None,  # uvicorn's records go through configure_logging's handler (text or JSON)
        "access_log": False,  # OUTRIDER_ACCESS_LOG logs requests with their route and request id instead
    }
    if settings.api_workers == 1:
        uvicorn.run(create_app(settings, services), **common)
        return
    services.close()
    # Each API process builds its own settings from the environment: hand it this command's options.
    os.environ.update(
        OUTRIDER_DATA_DIR=str(settings.data_dir.resolve()),
        OUTRIDER_HOST=settings.host,
        OUTRIDER_PORT=str(settings.port),
        OUTRIDER_MODEL_DIRS=json.dumps([str(path.resolve()) for path in settings.model_dirs]),
        OUTRIDER_API_WORKERS="1",  # each process is one of them
    )
    log.info("%d API processes share the port", settings.api_workers)
    uvicorn.run("outrider.api.app:app_from_environment", factory=True, workers=settings.api_workers, **common)


@keys_app.command("create")
def keys_create(
    account: str = typer.Option("admin", help="Account name that owns the key."),
    name: str = typer.Option("cli", help="A label for the key."),
    data_dir: Path | None = DataDir,
) -> None:
    """Issue a new key; the raw key is printed once."""
    svc = _local_services(data_dir)
    from outrider.storage.queries.accounts import get_account_by_name

    with svc.db.session() as s:
        found = get_account_by_name(s, account)
    if found is None:
        typer.secho(f"no account named '{account}'", fg="red", err=True)
        raise typer.Exit(1)
    from outrider.core.errors import OutriderError

    try:
        issued = svc.accounts.issue_key(found.id, name=name)
    except OutriderError as exc:  # e.g. a name with control characters
        typer.secho(exc.message, fg="red", err=True)
        raise typer.Exit(1) from None
    typer.echo(issued.raw_key)


@keys_app.command("list")
def keys_list(data_dir: Path | None = DataDir) -> None:
    """List keys (prefixes only) of every account."""
    svc = _local_services(data_dir)
    from outrider.storage.queries.accounts import list_keys

    with svc.db.session() as s:
        keys = list_keys(s)
    for key in keys:
        state = "revoked" if key.revoked_at else "active"
        typer.echo(f"{key.id}  {key.prefix}…  {key.name:<16} {key.account_id}  {state}")


@keys_app.command("revoke")
def keys_revoke(key_id: str, data_dir: Path | None = DataDir) -> None:
    """Revoke a key: every later request with it gets 403."""
    svc = _local_services(data_dir)
    from outrider.storage.queries.accounts import revoke_key

    with svc.db.session() as s:
        key = revoke_key(s, key_id)
    if key is None:
        typer.secho(f"no key '{key_id}'", fg="red", err=True)
        raise typer.Exit(1)
    svc.accounts.forget_key(key.id)  # with OUTRIDER_REDIS_URL, every API process forgets it at once
    typer.echo(f"revoked {key.id}")


@accounts_app.command("create")
def accounts_create(
    name: str,
    admin: bool = typer.Option(False, "--admin", help="Make it an admin account."),
    data_dir: Path | None = DataDir,
) -> None:
    """Create an account and print its first API key once."""
    from outrider.core.errors import OutriderError

    try:
        account, issued = _local_services(data_dir).accounts.create_account(name, is_admin=admin)
    except OutriderError as exc:  # an unsafe name, or one already taken
        typer.secho(exc.message, fg="red", err=True)
        raise typer.Exit(1) from None
    typer.secho(f"created {account.id} ({account.name})", err=True)
    typer.echo(issued.raw_key)


@accounts_app.command("list")
def accounts_list(data_dir: Path | None = DataDir) -> None:
    """List accounts."""
    for account in _local_services(data_dir).accounts.list_accounts():
        typer.echo(f"{account.id}  {account.name}{'  (admin)' if account.is_admin else ''}")


@app.command()
def infer(
    model: str = typer.Option(..., "--model", "-m", help="Model id (base model, saved model, job id)."),
    text: str | None = typer.Option(None, "--text", "-t", help="Text to extract from ('-' reads stdin)."),
    entities: str | None = typer.Option(None, "--entities", "-e", help="Comma-separated entity labels."),
    schema: str | None = typer.Option(None, "--schema", "-s", help="Full schema as JSON."),
    prompt: str | None = typer.Option(None, "--prompt", "-p", help="Generate from this prompt (decoders)."),
    max_tokens: int = typer.Option(128, help="Most tokens to generate."),
    threshold: float | None = typer.Option(
        None, help="Extraction threshold (default: the model's, a fine-tune's calibrated per-type thresholds)."
    ),
    url: str = typer.Option("http://127.0.0.1:8000", envvar="OUTRIDER_URL", help="Server URL."),
    api_key: str = typer.Option(..., envvar="OUTRIDER_API_KEY", help="API key (or OUTRIDER_API_KEY)."),
) -> None:
    """Run one inference against a running server and print the JSON response."""
    import httpx

    if prompt is not None:
        body: dict = {
            "model_id": model,
            "task": "generate",
            "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": prompt}],
        }
    else:
        if text == "-":
            text = sys.stdin.read()
        if text is None or (schema is None and entities is None):
            typer.secho("extraction needs --text and --entities or --schema (or use --prompt)", fg="red", err=True)
            raise typer.Exit(2)
        parsed = json.loads(schema) if schema else {"entities": [e.strip() for e in entities.split(",")]}
        body = {"model_id": model, "text": text, "schema": parsed, "include_confidence": True}
        if threshold is not None:
            body["threshold"] = threshold
    response = httpx.post(f"{url.rstrip('/')}/inference", json=body, headers={"X-API-Key": api_key}, timeout=600)
    typer.echo(json.dumps(response.json(), indent=2))
    if response.status_code >= 400:
        raise typer.Exit(1)


@app.command("demo-model")
def demo_model(
    data_dir: Path | None = DataDir,
    examples: int = typer.Option(DEMO_EXAMPLES, help="Templated training examples."),
    epochs: int = typer.Option(5, help="Training epochs."),
) -> None:
    """Fine-tune the MiniLM GLiNER2 base into `demo-extractor` (about 2 minutes on 2 CPU cores).

    It learns people, companies, locations, a `product` structure and a `works_for` relation from
    templated sentences, and is then served as model id `demo-extractor`.
    """
    from outrider.backends.builtin import base_model_dir
    from outrider.backends.encoder_gliner import MINILM_BASE_ID, ensure_minilm_base
    from outrider.training.demo_data import demo_records
    from outrider.training.encoder import EncoderTrainingConfig, train_encoder

    settings = _settings(data_dir)
    base = ensure_minilm_base(base_model_dir(settings, MINILM_BASE_ID))
    target = settings.saved_models_dir / "demo-extractor"
    target.parent.mkdir(parents=True, exist_ok=True)
    summary = train_encoder(base, demo_records(examples, seed=0), target, EncoderTrainingConfig(epochs=epochs))
    typer.secho(f"saved demo-extractor to {target} in {summary['train_seconds']} s", fg="green")


def main() -> None:  # pragma: no cover - console entry
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    app()
