"""The benchmark's command line: which figures run, how often, in what order."""

from __future__ import annotations

from bench.__main__ import _turns, modules, parse


def test_repeat_runs_each_module_that_many_times_in_a_row() -> None:
    args = parse(["--only", "emails", "e2e_cases", "--repeat", "3"])
    assert _turns(modules(args.only), args.repeat) == [
        ("bench.e2e", 1),
        ("bench.e2e", 2),
        ("bench.e2e", 3),
        ("bench.emails", 1),
        ("bench.emails", 2),
        ("bench.emails", 3),
    ]


def test_one_run_by_default_and_a_module_measuring_two_figures_runs_once() -> None:
    args = parse(["--only", "producer", "producer_scaling"])
    assert _turns(modules(args.only), args.repeat) == [("bench.producer", 1)]
