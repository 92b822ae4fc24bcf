"""Benchmark: peak memory of reading and validating a 100 MB import file, whole (reviews.importers, the API's
JSON array and `manage.py import_samples`) against streamed (reviews.import_jobs, the page's and the API's
background imports).

    .venv/bin/python bench/import_memory.py              # about 100 MB of generated rows
    .venv/bin/python bench/import_memory.py --mb 20

Each way runs in a child process of its own (peak RSS is per process), on a throwaway database; nothing is
written to the project: the write pass holds one 500-row batch in either way.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def child(way: str, path: Path) -> None:
    from bench.import_50k import rss_mb, setup_django

    setup_django(keep=False)
    from reviews import import_reading
    from reviews.projects import create_project
    from tests.conftest import make_user

    owner = make_user("owner")
    project = create_project(owner, name="Bench", criterion="c", label_kind="pass_fail")
    before, started = rss_mb(), time.monotonic()
    with path.open("rb") as stream:
        if way == "whole":
            records, errors = import_reading.read_records(stream, path.name)
            rows, problems = import_reading.validate(project, records, owner)
            count = len(rows) + len(errors) + len(problems)
        else:
            count = sum(
                1 for _ in import_reading.validated(project, import_reading.stream_records(stream, path.name), owner)
            )
    print(
        f"{way:>8}: {count:,} rows read and validated in {time.monotonic() - started:.1f} s; "
        f"peak RSS {rss_mb():.0f} MB (+{rss_mb() - before:.0f} MB over the {before:.0f} MB before reading)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--child", nargs=2, metavar=("WAY", "FILE"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    from bench.import_50k import generate

    folder = Path(tempfile.mkdtemp(prefix="memalign-bench-import-"))
    path = folder / "big.jsonl"
    with path.open("wb") as out:
        start = 0
        while out.tell() < args.mb * 1024 * 1024 - 2_000_000:  # stay under the site's 100 MB limit
            out.write(generate(1_000, start=start) + b"\n")
            start += 1_000
    print(f"file: {path.stat().st_size / 1024 / 1024:.0f} MB, {start:,} rows")
    env = {**os.environ, "MEMALIGN_IMPORT_MAX_ROWS": str(start), "DATA_DIR": str(folder)}
    for way in ("whole", "streamed"):
        subprocess.run([sys.executable, __file__, "--child", way, str(path)], env=env, check=True, cwd=ROOT)
    path.unlink()
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")


if __name__ == "__main__":
    main()
