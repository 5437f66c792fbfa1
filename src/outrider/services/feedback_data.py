"""Corrections to data: inference records with human feedback appended to a dataset as a new version.

``build`` selects the account's successful records that a human reviewed (a history filter: model,
project, verdict, time range) and, with ``include_judge_passed``, those the LLM judge passed that no human
reviewed. It converts each to examples of the dataset's task type (``datasets/from_inferences.py``:
corrections for ``incorrect`` verdicts, the output itself for ``correct`` and judge-passed ones), skips
examples whose input is already in the dataset (or earlier in the same build: the newest feedback wins),
and stores the latest version's examples plus the new ones as the next version. Feedback that cannot
become an example (a corrected entity that does not occur in its text) is reported with the record's id
and the reason, never placed by a guess.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime

from outrider.core.errors import Conflict, InvalidRequest, NotFound
from outrider.datasets.formats import TASK_TYPES
from outrider.datasets.from_inferences import Unfit, convert_record, example_key, taught_output
from outrider.services.accounts import Principal
from outrider.services.datasets import DatasetService, check_name
from outrider.storage.db import Database
from outrider.storage.queries import inferences as inferences_q
from outrider.storage.queries.inferences import InferenceFilter
from outrider.storage.records import DatasetVersion, Inference

MAX_RECORDS = 10_000  # records read by one build
MAX_UNFIT_LISTED = 1000
BUILD_VERDICTS = ("correct", "incorrect", "reviewed")


@dataclass(frozen=True)
class FeedbackFilter:
    model_id: str | None = None
    project_id: str | None = None
    human_verdict: str = "reviewed"  # correct | incorrect | reviewed (either)
    since: datetime | None = None
    until: datetime | None = None
    max_records: int = MAX_RECORDS
    include_judge_passed: bool = False  # also records the LLM judge passed that no human reviewed
    llmaj_score_min: float | None = None  # of those judge-passed records


@dataclass(frozen=True)
class BuildRequest:
    filter: FeedbackFilter = field(default_factory=FeedbackFilter)
    task_type: str | None = None  # required when the dataset does not exist yet
    classification_task: str | None = None  # which task of a classification schema, when it has several


@dataclass(frozen=True)
class BuildOutcome:
    name: str
    task_type: str
    base_version: int | None  # the version the new one extends (None: a new dataset)
    version: DatasetVersion | None  # None when nothing was added
    records: int  # reviewed records read
    added: int
    skipped_duplicates: int
    unfit: list[tuple[str, str]]  # (inference id, reason), at most MAX_UNFIT_LISTED
    unfit_count: int


class FeedbackDataService:
    def __init__(self, db: Database, datasets: DatasetService) -> None:
        self.db = db
        self.datasets = datasets
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)  # per account: bounded

    async def build(self, principal: Principal, name: str, request: BuildRequest) -> BuildOutcome:
        check_name(name)
        f = request.filter
        if f.human_verdict not in BUILD_VERDICTS:
            raise InvalidRequest(f"human_verdict must be one of {', '.join(BUILD_VERDICTS)}", param="human_verdict")
        if not 1 <= f.max_records <= MAX_RECORDS:
            raise InvalidRequest(f"max_records must be between 1 and {MAX_RECORDS}", param="max_records")
        if request.task_type is not None and request.task_type not in TASK_TYPES:
            raise InvalidRequest(f"task_type must be one of {', '.join(TASK_TYPES)}", param="task_type")
        account_id = principal.account.id
        # One build per account at a time (in this process): each extends the version the previous one made.
        async with self._locks[account_id]:
            return await asyncio.to_thread(self._build, account_id, name, request)

    def _build(self, account_id: str, name: str, request: BuildRequest) -> BuildOutcome:
        base, task_type, existing = self._base(account_id, name, request.task_type)
        records = self._records(account_id, request.filter)
        seen = {example_key(task_type, example) for example in existing}
        added: list[dict] = []
        duplicates = 0
        unfit: list[tuple[str, str]] = []
        for record in records:
            feedback = record.feedback
            # A human's verdict wins; a record only the judge passed teaches its own output.
            verdict = feedback.verdict if feedback is not None else "judge_pass"
            taught = taught_output(verdict, record.output, feedback.corrected_output if feedback else None)
            try:
                examples = convert_record(
                    task_type,
                    record.input,
                    taught,
                    record_task=record.task,
                    classification_task=request.classification_task,
                )
            except Unfit as exc:
                unfit.append((record.id, str(exc)))
                continue
            for example in examples:
                key = example_key(task_type, example)
                if key in seen:
                    duplicates += 1
                    continue
                seen.add(key)
                source = {"human_verdict": verdict} if feedback is not None else {"llmaj_verdict": "pass"}
                added.append({**example, "metadata": {"inference_id": record.id, **source}})
        version = None
        if added:
            _, version = self.datasets.store_examples(account_id, name, task_type, existing + added, "inferences")
        return BuildOutcome(
            name=name,
            task_type=task_type,
            base_version=base.version if base is not None else None,
            version=version,
            records=len(records),
            added=len(added),
            skipped_duplicates=duplicates,
            unfit=unfit[:MAX_UNFIT_LISTED],
            unfit_count=len(unfit),
        )

    def _base(self, account_id: str, name: str, task_type: str | None) -> tuple[DatasetVersion | None, str, list[dict]]:
        """The latest version (its task type and examples), or none for a new dataset."""
        try:
            _, latest = self.datasets.version_blocking(account_id, name, "latest")
        except NotFound:
            if task_type is None:
                raise NotFound(f"dataset '{name}' not found; give task_type to create it from inferences") from None
            return None, task_type, []
        if task_type is not None and task_type != latest.task_type:
            raise InvalidRequest(
                f"dataset '{name}' holds {latest.task_type} examples, not {task_type}", param="task_type"
            )
        if latest.status == "building":
            raise Conflict(f"the latest version of '{name}' is still being written by a job; try when it ends")
        return latest, latest.task_type, self.datasets.read_all(latest)

    def _records(self, account_id: str, f: FeedbackFilter) -> list[Inference]:
        query = InferenceFilter(
            account_id=account_id,
            model_id=f.model_id,
            project_id=f.project_id,
            since=f.since,
            until=f.until,
            status="success",
            human_verdict=f.human_verdict,
        )
        with self.db.session() as s:
            records, _ = inferences_q.list_inferences(s, query, limit=f.max_records, offset=0)
            if f.include_judge_passed:
                judged = replace(
                    query, human_verdict="unreviewed", llmaj_verdict="pass", llmaj_score_min=f.llmaj_score_min
                )
                passed, _ = inferences_q.list_inferences(s, judged, limit=f.max_records, offset=0)
                records = sorted(records + passed, key=lambda r: (r.created_at, r.id), reverse=True)
        return records[: f.max_records]
