"""`python -m bench` (make bench): which benchmarks it runs and with which arguments. Nothing is run or timed here."""

from __future__ import annotations

import pytest

from bench import __main__ as bench


def test_quick_passes_each_benchmark_its_smaller_sizes():
    _, args = bench.parse(["--quick"])
    steps = {s.name: s for s in bench.plan(args.names, args.quick, bench.available())}

    assert set(steps) == {n for n in bench.QUICK if n in bench.available()}
    assert {"distill_burst", "background_embedding", "judge_api", "working_memory_size"} <= set(steps)
    assert steps["distill_burst"].argv == ["--bursts", "50", "--latency", "0.5", "--no-offline"]
    assert steps["background_embedding"].argv == ["--count", "100"]
    assert steps["judge_api"].argv == ["--stored", "1000", "--principles", "200", "--requests", "30", "--judged", "64"]
    assert steps["working_memory_size"].argv == []
    assert not any(s.dropped for s in steps.values()), "every quick flag is one the script declares"


def test_without_quick_the_default_set_runs_at_each_scripts_own_sizes():
    _, args = bench.parse([])
    steps = bench.plan(args.names, args.quick, bench.available())

    assert not args.quick
    assert [s.name for s in steps] == [n for n in bench.DEFAULT if n in bench.available()]
    assert all(s.argv == [] for s in steps)


def test_quick_with_names_runs_only_those_and_a_benchmark_without_quick_sizes_at_its_defaults():
    _, args = bench.parse(["judge_api", "--quick", "import_50k"])
    steps = bench.plan(args.names, args.quick, bench.available())

    assert [s.name for s in steps] == ["judge_api", "import_50k"]
    assert steps[0].argv[:2] == ["--stored", "1000"]
    assert steps[1].argv == []


def test_a_quick_flag_the_script_does_not_declare_is_left_out_with_its_value(monkeypatch):
    monkeypatch.setitem(bench.QUICK, "working_memory_size", [("--no-such-flag", "3"), ("--counts", "20")])
    [step] = bench.plan(["working_memory_size"], True, bench.available())

    assert step.argv == ["--counts", "20"]
    assert step.dropped == ["--no-such-flag"]


def test_a_boolean_flag_is_declared_in_its_no_form_too():
    flags = bench.flags_of("distill_burst")

    assert {"--offline", "--no-offline", "--bursts"} <= flags
    assert "--quick" not in flags


def test_an_unknown_option_is_refused():
    with pytest.raises(SystemExit):
        bench.parse(["--quik"])
