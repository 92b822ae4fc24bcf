"""Finding 8: the local launcher restarts a crashed worker or beat (a few times at most), stops everything only
when the web server dies (or on Ctrl-C), and the embedded Redis keeps its queue across a restart."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis

from memalign_site.launcher import Supervisor, start_embedded_redis, stop

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
CRASHER = [sys.executable, "-c", "import sys; sys.exit(3)"]


def wait_until(condition, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def watching(supervisor: Supervisor):
    """Run supervisor.watch() in a thread; return (stop event, result holder, thread)."""
    done, result = threading.Event(), {}
    thread = threading.Thread(target=lambda: result.update(code=supervisor.watch(poll=0.05, until=done.is_set)))
    thread.start()
    return done, result, thread


def test_a_killed_worker_is_restarted_and_the_web_server_keeps_running():
    supervisor = Supervisor({"worker": SLEEPER, "beat": SLEEPER, "web": SLEEPER}, essential="web")
    supervisor.start()
    done, result, thread = watching(supervisor)
    try:
        worker, web = supervisor.processes["worker"], supervisor.processes["web"]
        os.kill(worker.pid, signal.SIGKILL)  # a real process, killed as the fault run did
        wait_until(lambda: supervisor.processes["worker"] is not worker)
        assert supervisor.processes["worker"].poll() is None  # the new worker runs
        assert supervisor.processes["web"] is web and web.poll() is None  # the site never went down
        assert "code" not in result  # still supervising
    finally:
        done.set()
        thread.join(10)
        supervisor.stop()
    assert result["code"] == 0
    assert all(p.poll() is not None for p in supervisor.processes.values())


def test_a_process_that_keeps_crashing_stops_everything():
    supervisor = Supervisor({"worker": CRASHER, "web": SLEEPER}, essential="web", max_restarts=2)
    supervisor.start()
    try:
        assert supervisor.watch(poll=0.05) == 1
        assert len(supervisor.crashes["worker"]) == 3
    finally:
        supervisor.stop()
    assert supervisor.processes["web"].poll() is not None


def test_the_web_server_dying_stops_everything():
    supervisor = Supervisor({"worker": SLEEPER, "web": SLEEPER}, essential="web")
    supervisor.start()
    try:
        os.kill(supervisor.processes["web"].pid, signal.SIGKILL)
        assert supervisor.watch(poll=0.05) == 1
    finally:
        supervisor.stop()
    assert supervisor.processes["worker"].poll() is not None


def test_the_embedded_redis_keeps_its_queue_across_a_crash_and_restart():
    folder = Path(tempfile.mkdtemp(prefix="mq-"))
    socket = folder / "redis.sock"
    try:
        server = start_embedded_redis(socket, keep_in=folder)
        redis.Redis(unix_socket_path=str(socket)).lpush("celery", b"a queued task")
        os.kill(server.pid, signal.SIGKILL)
        server.wait(10)
        server = start_embedded_redis(socket, keep_in=folder)
        assert redis.Redis(unix_socket_path=str(socket)).lrange("celery", 0, -1) == [b"a queued task"]
        stop([server])
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_the_local_workers_serve_every_queue_each_in_a_process_of_its_own():
    """`make run` starts a worker process per queue: an embedding backlog never holds up a distillation, and no
    queue is left without a worker (its tasks would never run)."""
    import memalign_site.settings as production
    from memalign_site.launcher import worker_commands

    commands = worker_commands(["celery"])
    served = [command[command.index("-Q") + 1] for command in commands.values()]
    assert sorted(served) == sorted(queue.name for queue in production.CELERY_TASK_QUEUES)
    assert sorted(served) == sorted([production.CELERY_TASK_DEFAULT_QUEUE, production.MEMALIGN_EMBED_QUEUE])
    assert all(command[command.index("--concurrency") + 1] == "1" for command in commands.values())  # two in all
    assert len({command[command.index("-n") + 1] for command in commands.values()}) == len(commands)
