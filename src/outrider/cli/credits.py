"""``outrider credits``: grant credit and show balances (runs against the local database)."""

from __future__ import annotations

from pathlib import Path

import typer

from outrider.core.usage import MICRO_USD

credits_app = typer.Typer(help="Grant credits and show balances (runs against the local database).")
DataDir = typer.Option(None, "--data-dir", help="Data directory (default: OUTRIDER_DATA_DIR or ./outrider-data).")


def _services(data_dir: Path | None):
    from outrider.app_state import build_services
    from outrider.config import build_settings

    return build_services(build_settings(data_dir=data_dir))


@credits_app.command("grant")
def credits_grant(
    account: str = typer.Argument(..., help="Account name."),
    amount_usd: float = typer.Argument(..., help="USD to add, e.g. 25 or 0.5."),
    description: str | None = typer.Option(None, help="Shown in the account's transactions."),
    data_dir: Path | None = DataDir,
) -> None:
    """Add credit to an account (a `grant` transaction)."""
    from outrider.core.errors import OutriderError

    svc = _services(data_dir)
    try:
        txn = svc.billing.grant(
            created_by="cli", account_id=None, account_name=account, amount_usd=amount_usd, description=description
        )
    except OutriderError as exc:
        typer.secho(exc.message, fg="red", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"granted ${amount_usd:.6f} to {account}: balance ${txn.balance_after_micro_usd / MICRO_USD:.6f}")


@credits_app.command("show")
def credits_show(account: str = typer.Argument(..., help="Account name."), data_dir: Path | None = DataDir) -> None:
    """Print an account's balance."""
    from outrider.storage.queries.accounts import get_account_by_name
    from outrider.storage.queries.billing import get_balance

    svc = _services(data_dir)
    with svc.db.session() as s:
        found = get_account_by_name(s, account)
        balance = get_balance(s, found.id) if found else None
    if balance is None:
        typer.secho(f"no account named '{account}'", fg="red", err=True)
        raise typer.Exit(1)
    if balance.unlimited:
        typer.echo(f"{account}: unlimited")
        return
    typer.echo(
        f"{account}: balance ${balance.balance_micro_usd / MICRO_USD:.6f}, "
        f"reserved ${balance.reserved_micro_usd / MICRO_USD:.6f}"
    )


@credits_app.command("clear-reservations")
def credits_clear_reservations(data_dir: Path | None = DataDir) -> None:
    """Free every credit reservation. Run it only while no API process serves: on PostgreSQL, reservations
    left by a crashed API process are not cleared at start-up (other processes may hold live ones)."""
    _services(data_dir).billing.clear_stale_reservations()
    typer.echo("cleared every credit reservation")
