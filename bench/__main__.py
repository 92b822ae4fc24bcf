"""`make bench`: run the benchmarks one after the other; exit 1 if any of them fails.

    .venv/bin/python -m bench                          # the default set, in order
    .venv/bin/python -m bench distill_burst            # some of them, by name
    .venv/bin/python -m bench --list

Each benchmark is a standalone script (bench/<name>.py) run as its own process from the repository root, with
this environment (DATABASE_URL, REDIS_URL, CHROMA_URL are honoured by each); each prints its own figures and
the exact command that produced them. The default set is the performance benchmarks; other scripts in bench/
(embedding_choice.py, a retrieval-quality measurement; judge_runs.py, about 20 minutes) run when named.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
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


def available() -> list[str]:
    return sorted(p.stem for p in BENCH.glob("*.py") if not p.stem.startswith("_"))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: {', '.join(DEFAULT)}, those present)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args()
    present = available()
    if args.list:
        for name in present:
            print(f"{name}{'  (default)' if name in DEFAULT else ''}")
        return 0
    unknown = [n for n in args.names if n.removesuffix(".py") not in present]
    if unknown:
        parser.error(f"no such benchmark: {', '.join(unknown)} (have: {', '.join(present)})")
    names = [n.removesuffix(".py") for n in args.names] or [n for n in DEFAULT if n in present]

    current: list[subprocess.Popen] = []

    def terminate(signum, frame):
        for process in current:
            if process.poll() is None:
                process.terminate()  # each benchmark stops its own workers and services on SIGTERM
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    results: list[tuple[str, int, float]] = []
    started = time.monotonic()
    try:
        for name in names:
            print(f"\n{'=' * 100}\n>>> bench/{name}.py\n{'=' * 100}", flush=True)
            t0 = time.monotonic()
            process = subprocess.Popen([sys.executable, str(BENCH / f"{name}.py")], cwd=ROOT)
            current[:] = [process]
            try:
                code = process.wait()
            except KeyboardInterrupt:
                process.terminate()
                try:
                    process.wait(60)
                except subprocess.TimeoutExpired:
                    process.kill()
                raise
            results.append((name, code, time.monotonic() - t0))
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    print(f"\n{'=' * 100}\nbenchmarks ({time.monotonic() - started:.0f} s in all):")
    for name, code, seconds in results:
        print(f"  {'ok    ' if code == 0 else f'FAILED (exit {code})'}  bench/{name}.py  {seconds:.0f} s")
    return 0 if all(code == 0 for _, code, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
