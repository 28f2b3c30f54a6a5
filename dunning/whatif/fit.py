"""Fitting the outcome model to a merchant's own retries (``dunning whatif --fit``).

Each observation is one merchant retry that got an answer: its context (decline class, hours
since the failure, retries before it, local time, country) and whether it passed. The model is
a product of factors, so the factors of each kind (the chance per class, the pay-day boost per
class, each weekday, each hour) are fitted by iterative proportional fitting: each is
multiplied by the successes observed at its level over those the model predicts there, until
they agree. The shape numbers (how fast a decline's cause passes, the half-life, the repeat
factor) are chosen from a small grid by likelihood. Every fitted factor is then pulled towards
its prior value in proportion to how few observations support it: a level seen in fewer than
``PRIOR_WEIGHT`` retries keeps about its default.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

from dunning.whatif.model import RetryContext, factors
from dunning.whatif.params import ModelParams

PRIOR_WEIGHT = 50.0
ROUNDS = 12
SEARCH_ROUNDS = 5
RECOVERY_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)
HALF_LIVES = (0.0, 5.0, 10.0, 20.0, 40.0)
REPEATS = (0.5, 0.65, 0.8, 0.9, 1.0)
SEARCH_SIZE = 20_000  # observations the shape search looks at (evenly spread)
KINDS = ("class", "payday", "weekday", "hour")


@dataclass(frozen=True, slots=True)
class Observation:
    context: RetryContext
    passed: bool


@dataclass(frozen=True)
class Shape:
    recovery_scale: float  # times the prior's recovery hours of every class
    half_life_days: float
    repeat_factor: float


@dataclass(frozen=True)
class FitResult:
    params: ModelParams
    prior: ModelParams
    shape: Shape
    support: dict[tuple[str, str], tuple[int, int]]  # (kind, level) -> (attempts, passed)
    observations: int
    log_likelihood: float
    prior_log_likelihood: float
    predicted: dict[str, tuple[float, int]]  # class -> (successes predicted, observed)


@dataclass
class _Data:
    """The observations as columns: each one's levels and its shape term."""

    levels: list[dict[str, str | None]]
    passed: list[bool]
    shape: list[float]


def _shape_term(ctx: RetryContext, prior: ModelParams, shape: Shape) -> float:
    hours = max(ctx.hours_since_failure, 0.0)
    rh = prior.classes[ctx.decline_class].recovery_hours * shape.recovery_scale
    recovery = 1.0 - math.exp(-hours / rh) if rh > 0 else 1.0
    hl = shape.half_life_days
    fade = 0.5 ** (hours / 24.0 / hl) if hl > 0 else 1.0
    return recovery * fade * shape.repeat_factor ** max(ctx.retries_before, 0)


def _levels(ctx: RetryContext, prior: ModelParams) -> dict[str, str | None]:
    probe = replace(prior, classes={k: replace(v, payday_boost=2.0)
                                    for k, v in prior.classes.items()})  # fmt: skip
    near = factors(ctx, probe)["payday"] == 2.0
    return {"class": ctx.decline_class, "payday": ctx.decline_class if near else None,
            "weekday": str(ctx.local.weekday()), "hour": str(ctx.local.hour)}  # fmt: skip


def _data(observations: Sequence[Observation], prior: ModelParams, shape: Shape) -> _Data:
    return _Data(
        [_levels(o.context, prior) for o in observations],
        [o.passed for o in observations],
        [_shape_term(o.context, prior, shape) for o in observations],
    )


Factors = dict[str, dict[str, float]]


def _factors(params: ModelParams) -> Factors:
    return {
        "class": {k: c.chance for k, c in params.classes.items()},
        "payday": {k: c.payday_boost for k, c in params.classes.items()},
        "weekday": {str(i): v for i, v in enumerate(params.weekday)},
        "hour": {str(i): v for i, v in enumerate(params.hour)},
    }


def _start(prior: ModelParams, data: _Data) -> Factors:
    """The prior's factors; a class with observations starts above 0, or it could not move."""
    f = _factors(prior)
    for lv in data.levels:
        key = lv["class"] or ""
        f["class"][key] = max(f["class"][key], 0.01)
    return f


def _p(f: Factors, lv: dict[str, str | None], shape: float, cap: float) -> float:
    boost = f["payday"][lv["payday"]] if lv["payday"] is not None else 1.0
    p = f["class"][lv["class"] or ""] * boost * f["weekday"][lv["weekday"] or ""]
    return min(p * f["hour"][lv["hour"] or ""] * shape, cap)


def _ipf(data: _Data, f: Factors, rounds: int, cap: float) -> Factors:
    for _ in range(rounds):
        for kind in KINDS:
            observed: dict[str, float] = {}
            predicted: dict[str, float] = {}
            for lv, passed, shape in zip(data.levels, data.passed, data.shape, strict=True):
                key = lv[kind]
                if key is not None:
                    predicted[key] = predicted.get(key, 0.0) + _p(f, lv, shape, cap)
                    observed[key] = observed.get(key, 0.0) + passed
            for key in predicted:
                ratio = (observed[key] + 0.5) / (predicted[key] + 0.5)
                f[kind][key] *= ratio
                if kind == "class":
                    f[kind][key] = min(f[kind][key], 1.0)
    return f


def _loglik(data: _Data, f: Factors, cap: float) -> float:
    total = 0.0
    for lv, passed, shape in zip(data.levels, data.passed, data.shape, strict=True):
        p = min(max(_p(f, lv, shape, cap), 1e-6), 1 - 1e-6)
        total += math.log(p if passed else 1 - p)
    return total


def _score(obs: Sequence[Observation], prior: ModelParams, shape: Shape) -> float:
    data = _data(obs, prior, shape)
    return _loglik(data, _ipf(data, _start(prior, data), SEARCH_ROUNDS, prior.max_chance),
                   prior.max_chance)  # fmt: skip


def search_shape(observations: Sequence[Observation], prior: ModelParams) -> Shape:
    """The grid values of the shape numbers with the best likelihood, one at a time, twice."""
    step = max(1, len(observations) // SEARCH_SIZE)
    obs = observations[::step]
    best = Shape(1.0, prior.half_life_days, prior.repeat_factor)
    grids = {"recovery_scale": RECOVERY_SCALES, "half_life_days": HALF_LIVES,
             "repeat_factor": REPEATS}  # fmt: skip
    for _ in range(2):
        for name, grid in grids.items():
            scored = [(_score(obs, prior, replace(best, **{name: v})), v) for v in grid]
            best = replace(best, **{name: max(scored)[1]})
    return best


def _support(data: _Data) -> dict[tuple[str, str], tuple[int, int]]:
    attempts: Counter[tuple[str, str]] = Counter()
    passed: Counter[tuple[str, str]] = Counter()
    for lv, ok in zip(data.levels, data.passed, strict=True):
        for kind in KINDS:
            if lv[kind] is not None:
                attempts[(kind, str(lv[kind]))] += 1
                passed[(kind, str(lv[kind]))] += ok
    return {key: (n, passed[key]) for key, n in attempts.items()}


def _normalise(f: Factors, data: _Data) -> Factors:
    """Weekday and hour factors averaging 1 over the observations, their scale moved into the
    chances (the product, and so every prediction, stays the same)."""
    n = len(data.levels) or 1
    for kind in ("weekday", "hour"):
        mean = sum(f[kind][lv[kind] or ""] for lv in data.levels) / n
        f[kind] = {k: v / mean for k, v in f[kind].items()}
        f["class"] = {k: v * mean for k, v in f["class"].items()}
    return f


def _shrink(f: Factors, prior: Factors, support: dict[tuple[str, str], tuple[int, int]]) -> Factors:
    out: Factors = {}
    for kind, values in f.items():
        out[kind] = {}
        for key, value in values.items():
            n = support.get((kind, key), (0, 0))[0]
            out[kind][key] = (n * value + PRIOR_WEIGHT * prior[kind][key]) / (n + PRIOR_WEIGHT)
    return out


def _params(prior: ModelParams, shape: Shape, f: Factors, n: int) -> ModelParams:
    classes = {
        k: replace(
            c,
            chance=min(1.0, f["class"][k]),
            payday_boost=f["payday"][k],
            recovery_hours=c.recovery_hours * shape.recovery_scale,
        )
        for k, c in prior.classes.items()
    }
    return replace(
        prior,
        classes=classes,
        half_life_days=shape.half_life_days,
        repeat_factor=shape.repeat_factor,
        weekday=tuple(f["weekday"][str(i)] for i in range(7)),
        hour=tuple(f["hour"][str(i)] for i in range(24)),
        source=f"fitted to {n:,} retries",
    )


def fit(observations: Sequence[Observation], prior: ModelParams) -> FitResult:
    """The model's numbers that best explain ``observations``, starting from ``prior``."""
    shape = search_shape(observations, prior)
    data = _data(observations, prior, shape)
    f = _normalise(_ipf(data, _start(prior, data), ROUNDS, prior.max_chance), data)
    support = _support(data)
    f = _shrink(f, _factors(prior), support)
    params = _params(prior, shape, f, len(observations))
    after = _data(observations, params, Shape(1.0, shape.half_life_days, shape.repeat_factor))
    predicted: dict[str, tuple[float, int]] = {}
    fitted = _factors(params)
    for lv, ok, s in zip(after.levels, after.passed, after.shape, strict=True):
        got = predicted.get(lv["class"] or "", (0.0, 0))
        p = _p(fitted, lv, s, params.max_chance)
        predicted[lv["class"] or ""] = (got[0] + p, got[1] + ok)
    prior_data = _data(observations, prior, Shape(1.0, prior.half_life_days, prior.repeat_factor))
    return FitResult(
        params, prior, shape, support, len(observations),
        _loglik(after, _factors(params), params.max_chance),
        _loglik(prior_data, _factors(prior), prior.max_chance),
        predicted,
    )  # fmt: skip
