"""``outrider users``: add users, reset passwords and list them (runs against the local database)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

users_app = typer.Typer(help="Add users, set their passwords and list them (runs against the local database).")
DataDir = typer.Option(None, "--data-dir", help="Data directory (default: OUTRIDER_DATA_DIR or ./outrider-data).")
PasswordStdin = typer.Option(
    False, "--password-stdin", help="Read the password from stdin (default: generate one and print it once)."
)


def _services(data_dir: Path | None):
    from outrider.app_state import build_services
    from outrider.config import build_settings

    return build_services(build_settings(data_dir=data_dir))


def _fail(message: str) -> typer.Exit:
    typer.secho(message, fg="red", err=True)
    return typer.Exit(1)


def _read_password(from_stdin: bool) -> str | None:
    return sys.stdin.readline().rstrip("\r\n") if from_stdin else None


@users_app.command("add")
def users_add(
    username: str = typer.Argument(..., help="Sign-in name (letters, digits, '.', '_', '-')."),
    account: str = typer.Option("admin", help="Name of the account the user belongs to."),
    role: str = typer.Option("member", help="owner, member or viewer."),
    email: str | None = typer.Option(None, help="Email address (also accepted at sign-in)."),
    password_stdin: bool = PasswordStdin,
    data_dir: Path | None = DataDir,
) -> None:
    """Add a user to an account; a generated password is printed once."""
    from outrider.core.errors import OutriderError
    from outrider.storage.queries.accounts import get_account_by_name

    svc = _services(data_dir)
    with svc.db.session() as s:
        found = get_account_by_name(s, account)
    if found is None:
        raise _fail(f"no account named '{account}'")
    try:
        created = svc.users.create(
            None,
            username=username,
            role=role,
            email=email,
            password=_read_password(password_stdin),
            account_id=found.id,
        )
    except OutriderError as exc:
        raise _fail(exc.message) from None
    typer.secho(f"added {created.user.id} ({created.user.username}, {created.user.role} of {account})", err=True)
    if created.password is not None:
        typer.secho("Its password (shown once, store it now):", fg="green", err=True)
        typer.echo(created.password)


@users_app.command("set-password")
def users_set_password(
    username: str = typer.Argument(..., help="Username or email."),
    password_stdin: bool = PasswordStdin,
    data_dir: Path | None = DataDir,
) -> None:
    """Set a user's password (ends its sessions); a generated one is printed once."""
    from outrider.core.errors import OutriderError

    svc = _services(data_dir)
    user = svc.users.find(username)
    if user is None:
        raise _fail(f"no user '{username}'")
    try:
        _, generated = svc.users.set_password(user.id, _read_password(password_stdin))
    except OutriderError as exc:
        raise _fail(exc.message) from None
    typer.secho(f"password of {user.username} changed; its sessions have ended", err=True)
    if generated is not None:
        typer.echo(generated)


@users_app.command("list")
def users_list(
    account: str | None = typer.Option(None, help="Only this account's users."),
    data_dir: Path | None = DataDir,
) -> None:
    """List users: id, username, email, role, account, state."""
    from outrider.storage.queries.accounts import get_account_by_name, list_accounts

    svc = _services(data_dir)
    with svc.db.session() as s:
        accounts = {a.id: a.name for a in list_accounts(s)}
        found = get_account_by_name(s, account) if account else None
    if account and found is None:
        raise _fail(f"no account named '{account}'")
    for user in svc.users.list(None, found.id if found else None):
        state = "disabled" if user.disabled else "active"
        email = user.email or "-"
        typer.echo(
            f"{user.id}  {user.username:<20} {email:<30} {user.role:<7} {accounts.get(user.account_id)}  {state}"
        )
