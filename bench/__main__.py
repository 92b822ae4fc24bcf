"""`make bench`: run the benchmarks one after the other; exit 1 if any of them fails.

    .venv/bin/python -m bench                          # the default set, in order
    .venv/bin/python -m bench distill_burst            # some of them, by name
    .venv/bin/python -m bench --quick                  # issue 23's figures at smaller sizes (make bench QUICK=1)
    .venv/bin/python -m bench --list

Each benchmark is a standalone script (bench/<name>.py) run as its own process from the repository root, with
this environment (DATABASE_URL, REDIS_URL, CHROMA_URL are honoured by each); each prints its own figures and
the exact command that produced them. The default set is the performance benchmarks; other scripts in bench/
(embedding_choice.py, a retrieval-quality measurement; judge_runs.py, about 20 minutes) run when named.

--quick runs the benchmarks behind issue 23's figures (distillation burst, background embedding, the judge API
with the first judgment after a restart and the run path, pages at scale where bench/pages_at_scale.py exists,
the working memory's size) with the smaller sizes in QUICK, passed on each script's own command line, so each
figure is printed with the command, and so the sizes, that produced it. It then repeats those figures' lines in
one summary. It measures the same things as the full runs, on less data: its figures are not the full runs'.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DEFAULT = (
    "critique_to_retrievable",
    "retrieval_latency",
    "distill_burst",
    "import_50k",
    "working_memory_size",
    "background_embedding",
    "learned_judge",
    "judge_api",
)

# Quick mode: issue 23's benchmarks in its order, with the sizes passed to each (flag, value or None). Chosen to
# finish in under 5 minutes in all on the 2-core machine; the full sizes are each script's defaults.
QUICK: dict[str, list[tuple[str, str | None]]] = {
    # 50 critiques saved back to back on samples created just before (issue 23's figure: 1,000).
    "distill_burst": [("--bursts", "50"), ("--latency", "0.5"), ("--no-offline", None)],
    # 100 samples, 200 texts (default 1,000 samples).
    "background_embedding": [("--count", "100")],
    # 1,000 stored examples, 200 principles (over the budget), 30 calls, 64 run verdicts (10,000 / 1,200 / 200 / 200).
    "judge_api": [("--stored", "1000"), ("--principles", "200"), ("--requests", "30"), ("--judged", "64")],
    # 10,000 samples instead of 100,000; present only where another change added the script.
    "pages_at_scale": [("--samples", "10000"), ("--requests", "15")],
    # Its own sizes: a few seconds, no services.
    "working_memory_size": [],
}

# The lines of each benchmark's output that carry issue 23's figures, repeated in the quick mode's summary.
FIGURES: dict[str, str] = {
    "distill_burst": r"^burst of \d+, provider|first call .* after the first save",
    "background_embedding": r"samples imported in|embedded in the background|distinct texts|in this process, one embed",
    "judge_api": r"project: |principle vectors stored|worker answering|first judgments after|judge calls, one at|run path",
    "pages_at_scale": r"^built |server time per page|p50 .*\(n=\d+\)|after each of",
    "working_memory_size": r"principles, .* in the prompt|cut|shorten",
}
COMMON = r"^command: |load average|ready in|Database: "


@dataclass
class Step:
    name: str
    argv: list[str]  # the flags passed to bench/<name>.py
    dropped: list[str] = field(default_factory=list)  # quick flags this version of the script does not take


def flags_of(name: str) -> set[str]:
    """The options bench/<name>.py declares (add_argument("--x"); a boolean --x also gives --no-x)."""
    text = (BENCH / f"{name}.py").read_text()
    declared = set(re.findall(r"add_argument\(\s*\"(--[\w-]+)\"", text))
    return declared | {f"--no-{flag[2:]}" for flag in declared}


def plan(names: list[str], quick: bool, present: list[str]) -> list[Step]:
    """What to run: the named benchmarks (or the default or quick set) with the quick sizes where asked.

    A quick flag the script does not declare is dropped and reported rather than failing the script: the scripts
    change on their own, and a quick run should still run the rest at the sizes it can pass."""
    if not names:
        names = [n for n in (QUICK if quick else DEFAULT) if n in present]
    steps = []
    for name in names:
        step = Step(name, [])
        if quick:
            declared = flags_of(name)
            for flag, value in QUICK.get(name, []):
                if flag in declared:
                    step.argv += [flag] if value is None else [flag, value]
                else:
                    step.dropped.append(flag)
        steps.append(step)
    return steps


def parse(argv: list[str] | None = None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: {', '.join(DEFAULT)}, those present)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"issue 23's figures at smaller sizes, under 5 minutes ({', '.join(QUICK)})",
    )
    return parser, parser.parse_intermixed_args(argv)  # names before and after --quick


def available() -> list[str]:
    return sorted(p.stem for p in BENCH.glob("*.py") if not p.stem.startswith("_"))


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min), {five:.2f} (5 min)"


def run(step: Step, output: list[str]) -> int:
    """Run one benchmark, echoing its output line by line and keeping it in `output`."""
    process = subprocess.Popen(
        [sys.executable, str(BENCH / f"{step.name}.py"), *step.argv],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},  # its lines as they come, not when the pipe's buffer fills
    )
    CURRENT[:] = [process]
    try:
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            output.append(line.rstrip("\n"))
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
        raise


CURRENT: list[subprocess.Popen] = []


def main(argv: list[str] | None = None) -> int:
    parser, args = parse(argv)
    present = available()
    if args.list:
        for name in present:
            tags = [t for t, group in (("default", DEFAULT), ("quick", QUICK)) if name in group]
            print(f"{name}{'  (' + ', '.join(tags) + ')' if tags else ''}")
        return 0
    unknown = [n for n in args.names if n.removesuffix(".py") not in present]
    if unknown:
        parser.error(f"no such benchmark: {', '.join(unknown)} (have: {', '.join(present)})")
    steps = plan([n.removesuffix(".py") for n in args.names], args.quick, present)

    def terminate(signum, frame):
        for process in CURRENT:
            if process.poll() is None:
                process.terminate()  # each benchmark stops its own workers and services on SIGTERM
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    load_at_start = load()
    if args.quick:
        absent = [n for n in QUICK if n not in present]
        print(f"quick mode: smaller sizes than the full runs, given on each command line below; load {load_at_start}")
        if absent and not args.names:
            print(f"  not in this checkout, skipped: {', '.join(f'bench/{n}.py' for n in absent)}")
    results: list[tuple[Step, int, float, list[str]]] = []
    started = time.monotonic()
    try:
        for step in steps:
            print(f"\n{'=' * 100}\n>>> bench/{step.name}.py {' '.join(step.argv)}\n{'=' * 100}", flush=True)
            if step.dropped:
                print(f"  (quick flags this script does not take, left out: {', '.join(step.dropped)})", flush=True)
            elif args.quick and step.name not in QUICK:
                print("  (no quick sizes for this benchmark: its own defaults)", flush=True)
            output: list[str] = []
            t0 = time.monotonic()
            code = run(step, output)
            results.append((step, code, time.monotonic() - t0, output))
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    wall = time.monotonic() - started
    if args.quick:
        print(f"\n{'=' * 100}\nquick mode, the figures again (sizes in each command):")
        for step, code, _, output in results:
            pattern = re.compile(f"{COMMON}|{FIGURES[step.name]}" if step.name in FIGURES else COMMON)
            print(f"\nbench/{step.name}.py{'' if code == 0 else f' (FAILED, exit {code})'}")
            for line in output:
                if pattern.search(line):
                    print(f"  {line.strip()}")
    print(f"\n{'=' * 100}\nbenchmarks ({wall:.0f} s in all; load {load_at_start} at the start, {load()} at the end):")
    for step, code, seconds, _ in results:
        print(f"  {'ok    ' if code == 0 else f'FAILED (exit {code})'}  bench/{step.name}.py  {seconds:.0f} s")
    return 0 if all(code == 0 for _, code, _, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
