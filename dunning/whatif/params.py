"""The outcome model's parameters: their types, their file, and the checks that name a bad key.

The defaults live in ``config/outcome_model.toml``, with where each number comes from; a file
written by ``dunning whatif --fit`` has the same shape. docs/whatif.md explains each number.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from config.settings import DEFAULT_POLICY_FILE
from dunning.errors import ConfigError
from dunning.policy.paydays import DEFAULT_PAYDAYS, PayDayRule
from dunning.policy.schema import Country, PayDay

DEFAULT_MODEL_FILE = DEFAULT_POLICY_FILE.with_name("outcome_model.toml")
# The model's decline classes: what the original decline says about the card, and a card of
# the customer's that did not decline (the retries moved to a backup card).
CLASSES = ("insufficient_funds", "soft", "weak", "new_card", "hard", "other_card")


@dataclass(frozen=True, slots=True)
class ClassParams:
    """One decline class: a retry's chance once the cause has passed, at a neutral moment; how
    many hours the cause takes to pass (0: at once); how much more likely a retry is shortly
    after a pay day."""

    chance: float
    recovery_hours: float = 0.0
    payday_boost: float = 1.0


@dataclass(frozen=True, slots=True)
class ModelParams:
    classes: Mapping[str, ClassParams]
    half_life_days: float = 0.0  # the chance halves every so many days (0: it does not fade)
    repeat_factor: float = 1.0  # each declined retry multiplies the next one's chance
    payday_window_days: int = 3  # days from a pay day (that day included) with the boost
    paydays: Mapping[str, tuple[PayDayRule, ...]] = field(
        default_factory=lambda: dict(DEFAULT_PAYDAYS)
    )
    weekday: tuple[float, ...] = (1.0,) * 7  # Monday first, in the customer's zone
    hour: tuple[float, ...] = (1.0,) * 24  # local hour of the retry
    max_chance: float = 0.95
    source: str = ""


def timing_blind(params: ModelParams) -> ModelParams:
    """The same model with every timing effect removed: a retry's chance depends only on the
    decline class and the retries before it (what a retry's timing cannot change)."""
    classes = {
        name: replace(c, recovery_hours=0.0, payday_boost=1.0) for name, c in params.classes.items()
    }
    return replace(
        params,
        classes=classes,
        half_life_days=0.0,
        weekday=(1.0,) * 7,
        hour=(1.0,) * 24,
        source=f"{params.source} (timing-blind)",
    )


def _finite(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("must be a finite number")
    return float(value)


Number = Annotated[float, BeforeValidator(_finite)]
Chance = Annotated[Number, Field(ge=0, le=1)]
Positive = Annotated[Number, Field(gt=0)]
NonNegative = Annotated[Number, Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Class(_Strict):
    chance: Chance
    recovery_hours: NonNegative
    payday_boost: Positive


class _Model(_Strict):
    max_chance: Annotated[Number, Field(gt=0, le=1)]
    half_life_days: NonNegative
    repeat_factor: Annotated[Number, Field(gt=0, le=1)]
    payday_window_days: Annotated[int, Field(ge=1, le=31)]
    weekday: Annotated[tuple[Positive, ...], Field(min_length=7, max_length=7)]
    hour: Annotated[tuple[Positive, ...], Field(min_length=24, max_length=24)]
    classes: dict[str, _Class]
    paydays: dict[Country, tuple[PayDay, ...]]


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_params(raw: Mapping[str, Any], source: str) -> ModelParams:
    """Validate parsed TOML; :class:`ConfigError` names every bad key."""
    try:
        m = _Model.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{_where(tuple(e['loc']))}: {e['msg']}" for e in exc.errors()[:20]]
        raise ConfigError(f"{source}: bad outcome model\n  " + "\n  ".join(lines)) from None
    missing = [name for name in CLASSES if name not in m.classes]
    unknown = [name for name in m.classes if name not in CLASSES]
    if missing or unknown:
        problem = f"missing {', '.join(missing)}" if missing else f"unknown {', '.join(unknown)}"
        raise ConfigError(f"{source}: classes: {problem} (the classes are {', '.join(CLASSES)})")
    return ModelParams(
        classes={
            n: ClassParams(c.chance, c.recovery_hours, c.payday_boost) for n, c in m.classes.items()
        },
        half_life_days=m.half_life_days,
        repeat_factor=m.repeat_factor,
        payday_window_days=m.payday_window_days,
        paydays=dict(m.paydays),
        weekday=tuple(m.weekday),
        hour=tuple(m.hour),
        max_chance=m.max_chance,
        source=source,
    )


def load_params(path: Path | None = None) -> ModelParams:
    """Read the model file (the defaults when ``path`` is ``None``)."""
    path = path or DEFAULT_MODEL_FILE
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        reason = exc.strerror or exc
        raise ConfigError(f"{path}: cannot read the outcome model ({reason})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    return parse_params(raw, str(path))
