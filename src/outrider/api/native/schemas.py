"""Wire types of the native surface."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from outrider.api.bodies import CheckedBody


class NativeMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant"]
    content: str


class RoutingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_pool: list[str] | None = None
    optimize: str | None = None
    task: str | None = None


class InferenceRequest(CheckedBody):
    """Encoder requests send ``schema``; decoder requests send ``task: "generate"`` and ``messages``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    model_id: str = Field(min_length=1, max_length=300)
    text: str | list[str] | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    # None: the model's calibrated per-type thresholds (fine-tunes), else 0.5
    threshold: float | None = Field(None, ge=0.0, le=1.0)
    include_confidence: bool = False
    include_spans: bool = False
    task: Literal["extract", "generate"] | None = None
    messages: list[NativeMessage] | None = None
    max_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: list[str] | None = Field(None, max_length=4)
    # A signed 64-bit integer: what the decoder's generator and upstream APIs accept (larger: 422, not a 500).
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1)
    store: bool = True
    project_id: str | None = Field(None, max_length=200)
    routing: RoutingIn | None = None  # with model_id "auto" (task generate): pool / mode / task overrides

    @model_validator(mode="after")
    def _one_kind(self) -> InferenceRequest:
        if self.task == "generate":
            if not self.messages:
                raise ValueError("messages is required (and must not be empty) when task is 'generate'")
            if self.schema_ is not None:
                raise ValueError("send either 'schema' (extraction) or task 'generate', not both")
        else:
            if self.schema_ is None:
                raise ValueError("schema is required for extraction (or send task 'generate' with messages)")
            if self.text is None:
                raise ValueError("text is required for extraction")
        return self


class UsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cache_read_tokens: int = Field(0, description="Of prompt_tokens: read from an upstream's prompt cache.")
    cache_write_tokens: int = Field(0, description="Of prompt_tokens: written to an upstream's prompt cache.")
    cost: float


class InferenceResponse(BaseModel):
    type: Literal["encoder", "decoder"]
    inference_id: str | None
    model_id: str
    model_used: str
    latency_ms: float
    result: dict[str, Any] | list[dict[str, Any]] | None = None
    completion: str | None = None
    finish_reason: str | None = None
    usage: UsageOut
    # Pioneer-compatible top-level token counts.
    input_tokens: int
    output_tokens: int
    routing: dict[str, Any] | None = Field(None, description='The routing decision, for model_id "auto".')


class BaseModelOut(BaseModel):
    id: str
    task_family: Literal["encoder", "decoder"]
    source: str
    description: str
    available: bool
    unavailable_reason: str | None = None


class BaseModelList(BaseModel):
    models: list[BaseModelOut]


class ModelOut(BaseModel):
    id: str
    object: Literal["model"] = "model"
    task_family: Literal["encoder", "decoder", "embedding"]
    source: str
    owned_by: str
    description: str
    fine_tunable: bool
    price_input_per_mtok: float
    price_output_per_mtok: float
    price_cache_read_per_mtok: float  # the input price unless the model declares its own
    price_cache_write_per_mtok: float
    context_length: int | None = None  # declared for upstream models
    capabilities: list[str] = []  # declared for upstream models (chat, completions, json, tools, ...)


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]


class ModelHealth(BaseModel):
    model: str
    status: Literal["ready", "loading", "unavailable"]
    reason: str | None = None
    # ready local models: what runs it (``onnx-int8``: the encoder's int8 ONNX Runtime form; ``torch``)
    runtime: str | None = None


HumanVerdict = Literal["correct", "incorrect", "reviewed", "unreviewed"]  # the history filter
JudgeVerdict = Literal["pass", "fail", "uncertain", "judged", "unjudged"]  # the history filter


class JudgeIn(CheckedBody):
    model_config = ConfigDict(extra="forbid")
    judge_model: str = Field(
        ..., min_length=1, max_length=300, description="A decoder the caller may call: local, fine-tuned or upstream."
    )


class JudgementOut(BaseModel):
    inference_id: str
    judge_model: str
    llmaj_verdict: Literal["pass", "fail", "uncertain"] | None
    llmaj_score: float | None
    llmaj_reasoning: str | None
    llmaj_judged_at: datetime
    llmaj_error: str | None = None


class FeedbackIn(CheckedBody):
    model_config = ConfigDict(extra="forbid")
    verdict: Literal["correct", "incorrect"]
    corrected_output: Any = None
    notes: str | None = Field(None, max_length=10_000)


class FeedbackOut(BaseModel):
    verdict: str
    corrected_output: Any = None
    notes: str | None = None
    created_at: datetime
    updated_at: datetime


class InferenceRecordOut(BaseModel):
    inference_id: str
    model_id: str
    model_used: str
    task: str
    surface: str
    project_id: str | None
    training_job_id: str | None
    input: Any
    output: Any
    status: str
    error_type: str | None
    error_message: str | None
    latency_ms: float
    usage: UsageOut
    created_at: datetime
    feedback: FeedbackOut | None
    # The feedback again under Pioneer's history field names (null when nobody reviewed the record).
    human_verdict: Literal["correct", "incorrect"] | None = None
    human_corrected_output: Any = None
    human_feedback_notes: str | None = None
    human_feedback_at: datetime | None = None
    # The LLM judge's verdict (POST /inferences/{id}/judge); a judge that failed leaves the verdict null and
    # says why in llmaj_error.
    llmaj_verdict: Literal["pass", "fail", "uncertain"] | None = None
    llmaj_score: float | None = None
    llmaj_reasoning: str | None = None
    llmaj_judged_at: datetime | None = None
    llmaj_judge_model: str | None = None
    llmaj_error: str | None = None
    routing: dict[str, Any] | None = Field(None, description='The full routing decision, for model "auto" calls.')


class InferenceListOut(BaseModel):
    inferences: list[InferenceRecordOut]
    total: int
    limit: int
    offset: int
