"""A fitted outcome model as people read it (a table of each number and its support) and as
``--model`` reads it (a TOML file of the same shape as ``config/outcome_model.toml``)."""

from __future__ import annotations

import json

from rich.table import Table

from dunning.simulate.words import DECLINE_CLASSES, words
from dunning.whatif.fit import HALF_LIVES, PRIOR_WEIGHT, REPEATS, FitResult

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _r(value: float) -> float:
    return round(value, 4)


def _seen(result: FitResult, kind: str, level: str) -> str:
    n, passed = result.support.get((kind, level), (0, 0))
    return f"{n:,} retries, {passed:,} passed" if n else "no retries: the prior"


def table(result: FitResult) -> Table:
    """Each fitted number next to its prior and the retries it rests on."""
    p, prior = result.params, result.prior
    t = Table("number", "fitted", "prior", "rests on", title=f"Outcome model {p.source}",
              caption=f"log-likelihood {result.log_likelihood:,.1f} (prior "
              f"{result.prior_log_likelihood:,.1f}); a number seen in fewer than "
              f"{PRIOR_WEIGHT:.0f} retries stays near its prior")  # fmt: skip
    for name, c in p.classes.items():
        label = words(DECLINE_CLASSES, name)
        t.add_row(f"chance: {label}", f"{c.chance:.3f}", f"{prior.classes[name].chance:.3f}",
                  _seen(result, "class", name))  # fmt: skip
        predicted, observed = result.predicted.get(name, (0.0, 0))
        if observed or predicted:
            t.add_row("  passed: predicted / seen", f"{predicted:,.0f}", "", f"{observed:,}")
        boost = f"{prior.classes[name].payday_boost:.2f}"
        t.add_row(f"pay-day boost: {label}", f"{c.payday_boost:.2f}", boost,
                  _seen(result, "payday", name))  # fmt: skip
    t.add_row("recovery hours: times the prior", f"{result.shape.recovery_scale:g}", "1", "grid")
    t.add_row("half-life (days)", f"{p.half_life_days:g}", f"{prior.half_life_days:g}", "grid")
    t.add_row("repeat factor", f"{p.repeat_factor:g}", f"{prior.repeat_factor:g}", "grid")
    for i, day in enumerate(WEEKDAYS):
        t.add_row(f"weekday: {day}", f"{p.weekday[i]:.2f}", f"{prior.weekday[i]:.2f}",
                  _seen(result, "weekday", str(i)))  # fmt: skip
    for h in range(24):
        t.add_row(f"hour: {h:02d}", f"{p.hour[h]:.2f}", f"{prior.hour[h]:.2f}",
                  _seen(result, "hour", str(h)))  # fmt: skip
    return t


def render_toml(result: FitResult) -> str:
    """The fitted model as a model file."""
    p = result.params
    lines = [
        f"# The outcome model fitted by `dunning whatif --fit` to {result.observations:,} "
        "merchant retries",
        f"# (log-likelihood {result.log_likelihood:,.1f}; the prior's "
        f"{result.prior_log_likelihood:,.1f}). See docs/whatif.md.",
        f"max_chance = {_r(p.max_chance)}",
        f"# chosen by likelihood from {', '.join(f'{v:g}' for v in HALF_LIVES)}",
        f"half_life_days = {_r(p.half_life_days)}",
        f"# chosen by likelihood from {', '.join(f'{v:g}' for v in REPEATS)}",
        f"repeat_factor = {_r(p.repeat_factor)}",
        f"payday_window_days = {p.payday_window_days}",
        "# Monday first; retries seen on each: "
        + ", ".join(str(result.support.get(("weekday", str(i)), (0, 0))[0]) for i in range(7)),
        f"weekday = {json.dumps([_r(v) for v in p.weekday])}",
        "# local hour, 00 first",
        f"hour = {json.dumps([_r(v) for v in p.hour])}",
    ]
    for name, c in p.classes.items():
        lines += [
            "",
            f"[classes.{name}]",
            f"# {_seen(result, 'class', name)}",
            f"chance = {_r(c.chance)}",
            f"recovery_hours = {_r(c.recovery_hours)}",
            f"# near a pay day: {_seen(result, 'payday', name)}",
            f"payday_boost = {_r(c.payday_boost)}",
        ]
    lines += ["", "[paydays]"]
    lines += [f"{key} = {json.dumps(list(rules))}" for key, rules in p.paydays.items()]
    return "\n".join(lines) + "\n"
