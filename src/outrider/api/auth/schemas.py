"""Wire types for sign-in, sessions and users."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from outrider.api.admin.schemas import AccountOut
from outrider.api.bodies import CheckedBody
from outrider.services.passwords import MAX_PASSWORD_CHARS

Role = Literal["owner", "member", "viewer"]
_PASSWORD = Field(min_length=1, max_length=MAX_PASSWORD_CHARS)


class LoginRequest(CheckedBody):
    model_config = ConfigDict(extra="forbid")
    username: str | None = Field(None, min_length=1, max_length=254, description="Username (or email).")
    email: str | None = Field(None, min_length=1, max_length=254, description="Email (or username).")
    password: str = _PASSWORD

    @model_validator(mode="after")
    def _one_name(self) -> LoginRequest:
        if (self.username is None) == (self.email is None):
            raise ValueError("send exactly one of username and email")
        return self

    @property
    def login(self) -> str:
        return self.username if self.username is not None else str(self.email)


class UserOut(BaseModel):
    id: str
    account_id: str
    username: str
    email: str | None
    role: Role
    disabled: bool
    created_at: datetime
    password_changed_at: datetime


class SessionOut(BaseModel):
    user: UserOut | None = Field(description="The signed-in user (with an API key: the key's user, if any).")
    account: AccountOut
    role: Role
    expires_at: datetime | None = Field(description="When the session ends unless renewed by use (null: a key).")
    csrf_token: str | None = Field(
        None, description="Send it as X-CSRF-Token on writes (also in the outrider_csrf cookie); sign-in only."
    )


class PasswordChange(CheckedBody):
    model_config = ConfigDict(extra="forbid")
    current_password: str = _PASSWORD
    new_password: str = _PASSWORD


class UserCreate(CheckedBody):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=100)
    email: str | None = Field(None, min_length=3, max_length=254)
    role: Role = "member"
    password: str | None = Field(None, min_length=1, max_length=MAX_PASSWORD_CHARS, description="Generated if unset.")
    account_id: str | None = Field(
        None, max_length=40, description="Another account (admin account owners only); default: the caller's."
    )


class UserCreated(UserOut):
    password: str | None = Field(description="The generated password, shown only here; null when one was given.")


class UserUpdate(CheckedBody):
    """Only the fields sent change. A new password, a new role or disabling ends the user's sessions."""

    model_config = ConfigDict(extra="forbid")
    role: Role | None = None
    email: str | None = Field(None, min_length=3, max_length=254)
    disabled: StrictBool | None = Field(None, description="true: the user cannot sign in and its keys stop.")
    password: str | None = Field(None, min_length=1, max_length=MAX_PASSWORD_CHARS)


class UserList(BaseModel):
    users: list[UserOut]
