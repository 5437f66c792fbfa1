"""Judge configuration records -> wire types."""

from __future__ import annotations

from outrider.storage.records import JudgeConfig

from .schemas import JudgeConfigOut


def judge_config_out(config: JudgeConfig) -> JudgeConfigOut:
    return JudgeConfigOut(
        project=config.project_id,
        judge_model=config.judge_model,
        sampling_rate=config.sampling_rate,
        updated_by=config.updated_by,
        created_at=config.created_at,
        updated_at=config.updated_at,
    )
