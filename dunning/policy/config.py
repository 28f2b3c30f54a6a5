"""The policy file: load it, validate it, and give each plan its effective numbers.

Layers, later ones win: the file's defaults, ``[intervals.<interval>]``, ``[plans."<name>"]``.
Overrides (a scenario's ``policy`` object) use the same keys, nested or dotted
(``{"retry.days": [1, 2]}``), and are merged over the whole file before validation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from dunning.errors import ConfigError
from dunning.policy.schema import Loc, PolicyModel, cross_checks, to_plan_policy
from dunning.policy.types import PlanPolicy

INTERVALS = ("day", "week", "month", "year")
_BARE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_Combo = tuple[str | None, str | None]  # (plan, interval); None = no override layer


def key_path(parts: Loc) -> str:
    """``("retry", "days", 2)`` -> ``retry.days[2]``; odd keys are quoted as TOML would."""
    out = ""
    for i, part in enumerate(parts):
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        quote = not _BARE_KEY.fullmatch(part) or (i == 1 and parts[0] == "plans")
        text = f'"{part}"' if quote else part
        out = f"{out}.{text}" if out else text
    return out


def _message(err: ErrorDetails) -> str:
    kind = err["type"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "literal_error":
        return f"must be one of {err.get('ctx', {}).get('expected', '')}"
    if kind in ("tuple_type", "list_type"):
        return "must be a list"
    if kind == "model_type" or kind == "dict_type":
        return "must be a table"
    if kind == "bool_type":
        return "must be true or false"
    return str(err["msg"])


def _expand(raw: Mapping[str, Any], names: bool = False) -> dict[str, Any]:
    """Turn dotted keys (``"retry.days"``) into nested tables; plan names stay whole."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        parts = [key] if names else str(key).split(".")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{key}: conflicts with the value of {part}")
        if isinstance(value, Mapping):
            value = _expand(value, names=parts == ["plans"])
        old = node.get(parts[-1])
        node[parts[-1]] = (
            merge(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
        )
    return out


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: tables merge key by key, every other value replaces."""
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            out[key] = merge(old, value)
        else:
            out[key] = value
    return out


def _validate(raw: Mapping[str, Any]) -> tuple[PolicyModel | None, list[tuple[Loc, str]]]:
    try:
        model = PolicyModel.model_validate(raw)
    except ValidationError as exc:
        found: list[tuple[Loc, str]] = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if p != "[key]")
            found.append((loc, _message(err)))
        return None, found
    problems = cross_checks(model)
    return (None if problems else model), problems


def _layers(raw: dict[str, Any], name: str) -> dict[str, dict[str, Any]]:
    table = raw.pop(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{name}: must be a table")
    for key, value in table.items():
        if not isinstance(value, dict):
            raise ConfigError(f"{key_path((name, key))}: must be a table")
        if name == "intervals" and key not in INTERVALS:
            raise ConfigError(
                f"{key_path((name, key))}: unknown interval (one of {', '.join(INTERVALS)})"
            )
    return table


@dataclass
class PolicyBook:
    """The validated policy of every plan: defaults, interval and plan overrides."""

    source: str
    base: dict[str, Any]
    intervals: dict[str, dict[str, Any]]
    plans: dict[str, dict[str, Any]]
    models: dict[_Combo, PolicyModel]
    warnings: list[str] = field(default_factory=list)
    _cache: dict[_Combo, PlanPolicy] = field(default_factory=dict, repr=False)

    def _combo(self, plan: str | None, interval: str | None) -> _Combo:
        return (
            plan if plan in self.plans else None,
            interval if interval in self.intervals else None,
        )

    def for_plan(self, plan: str, interval: str) -> PlanPolicy:
        """The effective policy of ``plan`` billed every ``interval``; unknown names: defaults."""
        combo = self._combo(plan, interval)
        if combo not in self._cache:
            self._cache[combo] = to_plan_policy(self.models[combo])
        return self._cache[combo]

    def as_dict(self, plan: str | None = None, interval: str | None = None) -> dict[str, Any]:
        """The effective policy as nested tables, the shape of the policy file."""
        dumped: dict[str, Any] = self.models[self._combo(plan, interval)].model_dump(mode="json")
        return dumped


def _window_warning(prefix: Loc, m: PolicyModel) -> str | None:
    limit = m.limits.visa.transaction_window_days
    last_retry = m.retry.days[-1] if m.retry.days else 0
    if m.window.suspend_day <= limit and last_retry < limit:
        return None
    key: Loc = ("window", "suspend_day") if m.window.suspend_day > limit else ("retry", "days")
    day = max(m.window.suspend_day, last_retry)
    return (
        f"{key_path(prefix + key)}: a {day}-day window is longer than Visa's "
        f"{limit}-day reattempt window (limits.visa.transaction_window_days); tries after "
        f"day {limit} on a Visa card need a new card or a new transaction"
    )


def _parents(combo: _Combo) -> list[_Combo]:
    plan, interval = combo
    if plan is None and interval is None:
        return []
    if plan is None or interval is None:
        return [(None, None)]
    return [(None, None), (None, interval), (plan, None)]


def build_book(
    raw: Mapping[str, Any], source: str, overrides: Mapping[str, Any] | None = None
) -> PolicyBook:
    """Validate a parsed policy (plus overrides); raise :class:`ConfigError` naming each key."""
    # Only overrides may use dotted keys: in the file a dot inside quotes belongs to a name.
    data = merge(raw, _expand(overrides or {}))
    intervals, plans = _layers(data, "intervals"), _layers(data, "plans")
    combos: list[tuple[_Combo, Loc, dict[str, Any]]] = [((None, None), (), data)]
    combos += [((None, i), ("intervals", i), merge(data, o)) for i, o in intervals.items()]
    for plan, over in plans.items():
        combos.append(((plan, None), ("plans", plan), merge(data, over)))
        combos += [
            ((plan, i), ("plans", plan), merge(merge(data, io), over))
            for i, io in intervals.items()
        ]
    models: dict[_Combo, PolicyModel] = {}
    found: dict[_Combo, set[Loc]] = {}
    problems: list[str] = []
    warnings: list[str] = []
    for combo, prefix, merged in combos:
        model, errors = _validate(merged)
        found[combo] = {loc for loc, _ in errors}
        # A problem a lower layer already has is reported once, under that layer's key.
        inherited = set().union(*(found.get(parent, set()) for parent in _parents(combo)))
        for loc, message in errors:
            line = f"{key_path(prefix + loc)}: {message}"
            if loc not in inherited and line not in problems:
                problems.append(line)
        if model is not None:
            models[combo] = model
            warning = _window_warning(prefix, model)
            if warning and warning not in warnings:
                warnings.append(warning)
    if problems:
        raise ConfigError("\n".join(problems))
    return PolicyBook(source, data, intervals, plans, models, warnings)
