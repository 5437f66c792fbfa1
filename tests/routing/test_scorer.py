"""Scoring is pure: every figure here is computed by hand from the documented formula."""

from __future__ import annotations

import math

import pytest

from outrider.core.errors import InvalidRequest
from outrider.core.usage import Price
from outrider.routing.scorer import (
    COST_FLOOR_USD,
    MODE_WEIGHTS,
    UNKNOWN_FIT_PENALTY,
    CandidateModel,
    FitTable,
    LatencyTracker,
    blend_fit,
    mode_weights,
    relative_score,
    score_candidates,
    validate_fit_scores,
)

CHEAP = CandidateModel("cheap", Price(0.1, 0.2))
PRICEY = CandidateModel("pricey", Price(3.0, 15.0))


def rank(pool, fits, mode="balanced", latency=None, tasks=None, complexity="medium", **kwargs):
    table = FitTable(fits)
    return score_candidates(
        tasks or {"code": 1.0}, complexity, pool, table.estimate, latency or {}, mode, 200, **kwargs
    )


def test_blend_fit_is_a_beta_posterior_mean():
    assert blend_fit(0.8, 0, 0) == blend_fit(0.8, 0, 0, prior_strength=100)
    assert blend_fit(0.8, 0, 0).score == 0.8 and blend_fit(0.8, 0, 0).source == "configured"
    blended = blend_fit(0.8, 2, 6, prior_strength=8)
    assert blended.score == pytest.approx((0.8 * 8 + 2) / 16) and blended.source == "configured+observed"
    observed = blend_fit(None, 3, 1)
    assert observed.score == pytest.approx(4 / 6) and observed.known and observed.source == "observed"
    unknown = blend_fit(None, 0, 0)
    assert unknown.score == 0.5 and not unknown.known and unknown.source == "unknown"
    # Many verdicts outweigh any prior.
    assert blend_fit(0.9, 0, 400).score < 0.05
    with pytest.raises(ValueError):
        blend_fit(0.5, -1, 0)


def test_fit_scores_are_validated_and_aliases_normalised():
    assert validate_fit_scores({"m": {"code_generation": 0.9, "*": 0.4}}) == {"m": {"code": 0.9, "*": 0.4}}
    with pytest.raises(ValueError, match="poetry"):
        validate_fit_scores({"m": {"poetry": 0.5}})
    with pytest.raises(ValueError, match="within 0 and 1"):
        validate_fit_scores({"m": {"code": 1.5}})


def test_fit_table_sources_and_feedback():
    table = FitTable({"a": {"code": 0.9, "*": 0.6}}, prior_strength=4)
    assert table.estimate("a", "code").source == "configured"
    assert table.estimate("a", "math").source == "model_default" and table.estimate("a", "math").score == 0.6
    assert not table.estimate("b", "code").known
    for _ in range(4):
        table.record_verdict("a", "code_generation", correct=False)  # aliases count for the canonical task
    assert table.estimate("a", "code").score == pytest.approx(0.9 * 4 / 8)
    assert table.counts() == {("a", "code"): (0, 4)}
    table.load_counts({("b", "code"): (9, 1)})
    assert table.estimate("b", "code").score == pytest.approx(10 / 12)
    assert table.estimate("a", "code").score == 0.9  # load_counts replaced the history


def test_latency_tracker_keeps_a_window_and_its_median():
    tracker = LatencyTracker(window=3)
    assert tracker.p50("m") is None
    tracker.seed("m", [1000, 10, 20, 30])  # only the newest three stay
    assert tracker.p50("m") == 20 and tracker.samples("m") == 3
    tracker.record("m", 5)
    assert tracker.p50("m") == 20  # window now 20, 30, 5
    tracker.record("m", 1)
    assert tracker.p50("m") == 5


def test_relative_scale():
    assert relative_score(1.0, 1.0) == 1.0
    assert relative_score(10.0, 1.0) == pytest.approx(0.5)
    assert relative_score(100.0, 1.0) == 0.0
    assert relative_score(1000.0, 1.0) == 0.0


def test_modes_pull_in_their_direction():
    fits = {"cheap": {"code": 0.55}, "pricey": {"code": 0.95}}
    latency = {"cheap": 2000.0, "pricey": 400.0}
    assert rank([CHEAP, PRICEY], fits, "quality", latency)[0].model_id == "pricey"
    assert rank([CHEAP, PRICEY], fits, "cost", latency)[0].model_id == "cheap"
    assert rank([CHEAP, PRICEY], fits, "latency", latency)[0].model_id == "pricey"
    slow_pricey = {"cheap": 300.0, "pricey": 3000.0}
    assert rank([CHEAP, PRICEY], fits, "latency", slow_pricey)[0].model_id == "cheap"


def test_components_follow_the_documented_formula():
    ranked = rank([CHEAP, PRICEY], {"cheap": {"code": 0.6}, "pricey": {"code": 0.9}}, "balanced", {"cheap": 500.0})
    by_id = {c.model_id: c for c in ranked}
    w = mode_weights("balanced", "medium")
    assert (w.fit, w.cost, w.latency) == (0.5, 0.3, 0.2)
    output_tokens = 250 * 2  # code, medium complexity
    cheap_cost = (200 * 0.1 + output_tokens * 0.2) / 1e6
    pricey_cost = (200 * 3.0 + output_tokens * 15.0) / 1e6
    assert by_id["cheap"].estimated_cost_usd == pytest.approx(cheap_cost)
    assert by_id["cheap"].cost == 1.0
    ratio = (pricey_cost + COST_FLOOR_USD) / (cheap_cost + COST_FLOOR_USD)
    assert by_id["pricey"].cost == pytest.approx(1 - 0.5 * math.log10(ratio))
    assert by_id["cheap"].latency == 1.0 and by_id["cheap"].latency_known
    assert by_id["pricey"].latency == 0.5 and not by_id["pricey"].latency_known
    for c in ranked:
        assert c.total == pytest.approx(w.fit * c.fit + w.cost * c.cost + w.latency * c.latency - c.penalty, abs=1e-6)
    assert [c.rank for c in ranked] == [1, 2]
    assert "latency unknown" in by_id["pricey"].reason


def test_unknown_fit_is_neutral_penalised_and_said():
    known = CandidateModel("known", Price(1, 1))
    unknown = CandidateModel("unknown", Price(1, 1))
    ranked = rank([unknown, known], {"known": {"code": 0.5}})
    assert [c.model_id for c in ranked] == ["known", "unknown"]  # same price, same neutral fit: evidence wins
    loser = ranked[1]
    assert loser.fit == 0.5 and not loser.fit_known and loser.fit_unknown_share == 1.0
    assert loser.penalty == pytest.approx(0.5 * UNKNOWN_FIT_PENALTY)
    assert "fit unknown" in loser.reason and "unknown" in loser.task_fits[0].estimate.source


def test_fit_is_weighted_over_the_likely_tasks():
    ranked = rank(
        [CHEAP],
        {"cheap": {"code": 0.9, "math": 0.3}},
        tasks={"code": 0.6, "math": 0.38, "chat": 0.02},  # chat is below the 5% floor and is dropped
    )
    assert ranked[0].fit == pytest.approx((0.9 * 0.6 + 0.3 * 0.38) / 0.98)
    assert [f.task for f in ranked[0].task_fits] == ["code", "math"]
    partly = rank([CHEAP], {"cheap": {"code": 0.9}}, tasks={"code": 0.5, "math": 0.5})[0]
    assert partly.fit_unknown_share == 0.5 and partly.penalty == pytest.approx(0.5 * UNKNOWN_FIT_PENALTY * 0.5)


def test_complex_prompts_tilt_toward_fit():
    balanced = MODE_WEIGHTS["balanced"].fit
    assert mode_weights("balanced", "complex").fit > balanced > mode_weights("balanced", "simple").fit
    w = mode_weights("cost", "complex")
    assert w.fit + w.cost + w.latency == pytest.approx(1.0)
    middle = CandidateModel("middle", Price(0.5, 1.5))
    fits = {"cheap": {"code": 0.5}, "middle": {"code": 0.75}}
    assert rank([CHEAP, middle], fits, complexity="simple")[0].model_id == "cheap"
    assert rank([CHEAP, middle], fits, complexity="complex")[0].model_id == "middle"


def test_unknown_price_max_tokens_and_ties():
    no_price = CandidateModel("no-price")
    ranked = rank([no_price, CHEAP], {"no-price": {"code": 0.7}, "cheap": {"code": 0.7}})
    by_id = {c.model_id: c for c in ranked}
    assert by_id["no-price"].cost == 0.5 and not by_id["no-price"].cost_known
    assert by_id["no-price"].estimated_cost_usd is None and "price unknown" in by_id["no-price"].reason
    capped = rank([CHEAP], {}, max_output_tokens=10)[0]
    assert capped.estimated_cost_usd == pytest.approx((200 * 0.1 + 10 * 0.2) / 1e6)
    twins = [CandidateModel("b", Price(1, 1)), CandidateModel("a", Price(1, 1))]
    assert [c.model_id for c in rank(twins, {})] == ["a", "b"]  # equal in everything: by id, every time


def test_unknown_mode_is_a_422():
    with pytest.raises(InvalidRequest) as error:
        rank([CHEAP], {}, mode="fastest-please")
    assert error.value.param == "routing.optimize"
    assert rank([CHEAP], {}, mode="cheapest")[0].model_id == "cheap"  # the dashboard's names are aliases
