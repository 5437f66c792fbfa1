"""Wire types of the judge configuration surface."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from outrider.api.bodies import CheckedBody
from outrider.services.judge_configs import MAX_PROJECT_CHARS


class JudgeConfigIn(CheckedBody):
    model_config = ConfigDict(extra="forbid")

    judge_model: str = Field(
        ...,
        min_length=1,
        max_length=300,
        description="A decoder the caller may call: local, fine-tuned, upstream or a deployment (@name).",
    )
    sampling_rate: float = Field(..., ge=0, le=1, description="The share of successful records judged, 0 to 1.")
    project: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_PROJECT_CHARS,
        description="The project it is for (records sent with this project_id); none: the whole account.",
    )


class JudgeConfigOut(BaseModel):
    object: Literal["judge_config"] = "judge_config"
    project: str | None = Field(..., description="The project it is for; null: the account-wide judge.")
    judge_model: str
    sampling_rate: float
    updated_by: str = Field(..., description="'user NAME' or 'key NAME (PREFIX...)'.")
    created_at: datetime
    updated_at: datetime


class JudgeConfigList(BaseModel):
    object: Literal["list"] = "list"
    data: list[JudgeConfigOut]


class JudgeConfigDeleted(BaseModel):
    project: str | None
    deleted: bool = True
