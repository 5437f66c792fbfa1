"""Keys (any account, its own keys) and accounts (admins only)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from outrider.api.deps import AdminPrincipal, CurrentPrincipal, ServicesDep
from outrider.core.errors import InvalidRequest
from outrider.services.accounts import IssuedKey
from outrider.storage.records import Account, ApiKey

from .schemas import (
    AccountCreate,
    AccountCreated,
    AccountList,
    AccountOut,
    KeyCreate,
    KeyCreated,
    KeyList,
    KeyOut,
    KeyUpdate,
)

router = APIRouter(tags=["keys and accounts"])


def key_out(key: ApiKey) -> KeyOut:
    return KeyOut(**{name: getattr(key, name) for name in KeyOut.model_fields})


def _created(issued: IssuedKey) -> KeyCreated:
    return KeyCreated(**key_out(issued.key).model_dump(), key=issued.raw_key)


def account_out(account: Account) -> AccountOut:
    return AccountOut(
        id=account.id,
        name=account.name,
        is_admin=account.is_admin,
        unlimited_credits=account.unlimited_credits,
        created_at=account.created_at,
    )


@router.post("/keys", response_model=KeyCreated, status_code=201)
async def create_key(body: KeyCreate, who: CurrentPrincipal, svc: ServicesDep):
    issued = await asyncio.to_thread(
        svc.accounts.issue_key,
        who.account.id,
        name=body.name,
        model_pool=body.model_pool,
        optimize_mode=body.optimize_mode,
        expires_at=body.expires_at,
        rpm_limit=body.rpm_limit,
        tpm_limit=body.tpm_limit,
        issuer=who,
    )
    return _created(issued)


@router.get("/keys", response_model=KeyList)
async def list_keys(who: CurrentPrincipal, svc: ServicesDep) -> KeyList:
    keys = await asyncio.to_thread(svc.accounts.list_keys, who)
    return KeyList(keys=[key_out(k) for k in keys])


@router.patch("/keys/{key_id}", response_model=KeyOut)
async def update_key(key_id: str, body: KeyUpdate, who: CurrentPrincipal, svc: ServicesDep) -> KeyOut:
    changes = body.model_dump(exclude_unset=True)
    for field in ("name", "optimize_mode"):
        if field in changes and changes[field] is None:
            raise InvalidRequest(f"{field} cannot be null", param=field)
    return key_out(await asyncio.to_thread(svc.accounts.update_key, who, key_id, changes))


@router.delete("/keys/{key_id}", response_model=KeyOut)
async def revoke_key(key_id: str, who: CurrentPrincipal, svc: ServicesDep) -> KeyOut:
    return key_out(await asyncio.to_thread(svc.accounts.revoke_key, who, key_id))


@router.post("/accounts", response_model=AccountCreated, status_code=201)
async def create_account(body: AccountCreate, who: AdminPrincipal, svc: ServicesDep) -> AccountCreated:
    account, issued = await asyncio.to_thread(
        svc.accounts.create_account,
        body.name,
        is_admin=body.is_admin,
        unlimited_credits=body.unlimited_credits,
        by=who,
    )
    return AccountCreated(**account_out(account).model_dump(), api_key=_created(issued))


@router.get("/accounts", response_model=AccountList)
async def list_accounts(_: AdminPrincipal, svc: ServicesDep) -> AccountList:
    return AccountList(accounts=[account_out(a) for a in await asyncio.to_thread(svc.accounts.list_accounts)])


@router.get("/me", response_model=AccountOut)
async def me(who: CurrentPrincipal) -> AccountOut:
    return account_out(who.account)
