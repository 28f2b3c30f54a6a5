"""Fitting the outcome model: retries drawn from a known model give its numbers back, and
``dunning whatif --fit`` fits the retries a pipeline database holds."""

from __future__ import annotations

import random
import tomllib
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from dunning.cli.main import main
from dunning.simulate.runner import Wiring, advance, simulation
from dunning.whatif.book import read_file, scenario, span
from dunning.whatif.fit import Observation, fit
from dunning.whatif.model import RetryContext, chance, draw
from dunning.whatif.params import ModelParams, load_params, parse_params
from dunning.whatif.replay import PolicySpec, Task, _oracle
from tests.unit.whatif import books

PRIOR = load_params()
TRUTH = replace(
    PRIOR,
    classes={**PRIOR.classes, "insufficient_funds": replace(
        PRIOR.classes["insufficient_funds"], chance=0.2)},
    weekday=(1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 1.0),
    repeat_factor=0.65,
    half_life_days=20.0,
)  # fmt: skip


def _observations(truth: ModelParams, n: int) -> list[Observation]:
    rng = random.Random(4)
    out = []
    for i in range(n):
        local = datetime(2026, 1, 1) + timedelta(hours=rng.randrange(24 * 90))
        ctx = RetryContext(
            decline_class=rng.choice(["insufficient_funds", "soft", "weak"]),
            hours_since_failure=rng.uniform(12, 24 * 25),
            retries_before=rng.randrange(4),
            local=local,
            country=rng.choice(["DK", "US"]),
        )
        out.append(Observation(ctx, draw(1, f"in_{i}", 2) < chance(ctx, truth)))
    return out


def test_retries_from_a_known_model_give_its_numbers_back() -> None:
    result = fit(_observations(TRUTH, 6_000), PRIOR)
    p = result.params
    assert p.classes["insufficient_funds"].chance == pytest.approx(0.2, abs=0.05)
    assert p.weekday[5] < 0.7 < min(p.weekday[:5])
    assert p.repeat_factor == 0.65
    assert p.half_life_days == 20.0
    assert result.log_likelihood > result.prior_log_likelihood
    for cls, (predicted, observed) in result.predicted.items():
        assert predicted == pytest.approx(observed, rel=0.1), cls
    # No retry of a hard decline was seen: its chance stays the prior's 0.
    assert p.classes["hard"].chance == 0.0
    assert ("class", "hard") not in result.support


def test_a_level_seen_rarely_stays_near_its_prior() -> None:
    few = _observations(TRUTH, 6_000)
    few = [o for o in few if o.context.local.hour != 3] + [
        o for o in few if o.context.local.hour == 3
    ][:5]
    p = fit(few, PRIOR).params
    assert p.hour[3] == pytest.approx(PRIOR.hour[3], rel=0.2)


def test_the_command_fits_the_retries_in_the_database_and_writes_a_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    book = read_file(books.write(tmp_path / "book.jsonl", 40))
    start, days = span(book.cases, 20)
    sc = scenario(book, book.cases, start=start, days=days)
    task = Task(0, PolicySpec("default", Path()), book, book.cases, start, days, PRIOR, 3)
    with simulation(sc, Wiring(workdir=tmp_path, oracle=_oracle(task))) as sim:
        advance(sim, sc)
    monkeypatch.setenv("DUNNING_DATABASE_URL", f"sqlite:///{tmp_path / 'simulation.sqlite3'}")
    out = tmp_path / "fitted.toml"
    assert main(["whatif", "--fit", "--since", "3650", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "chance: insufficient funds" in printed
    assert "retries" in printed
    fitted = parse_params(tomllib.loads(out.read_text(encoding="utf-8")), str(out))
    assert fitted.classes["hard"].chance == 0.0
    assert 0 < fitted.classes["insufficient_funds"].chance <= 1
