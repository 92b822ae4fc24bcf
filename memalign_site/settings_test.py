"""Settings for the test suite: the real settings, with a throwaway data folder and debug mode.

DATABASE_URL and REDIS_URL are honoured (CI points them at PostgreSQL and Redis); without them the suite uses
SQLite and an embedded Redis, like `make run`.
"""

import os
import tempfile
import uuid

# Under pytest-xdist each worker process is a test run of its own: its own data folder (the embedded Redis's
# socket, Chroma's files), queue and key prefix; processes that its tests start inherit them.
_xdist_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _xdist_worker and os.environ.get("MEMALIGN_TEST_XDIST_WORKER") != _xdist_worker:
    os.environ["MEMALIGN_TEST_XDIST_WORKER"] = _xdist_worker
    os.environ["DATA_DIR"] = tempfile.mkdtemp(prefix=f"memalign-test-{_xdist_worker}-")
    os.environ["MEMALIGN_TEST_RUN"] = uuid.uuid4().hex[:8]

os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="memalign-test-"))
# Tests never reach the real Anthropic service: the anthropic provider only ever talks to the local fake.
if not os.environ.get("ANTHROPIC_BASE_URL", "").startswith("http://127.0.0.1:"):
    os.environ.pop("ANTHROPIC_API_KEY", None)
    os.environ.pop("ANTHROPIC_BASE_URL", None)
os.environ.pop("MEMALIGN_PROVIDER", None)

# A queue and a key prefix of this run's own, so a shared Redis (CI's) never mixes runs. Worker processes that
# tests start inherit them through the environment.
os.environ.setdefault("MEMALIGN_TEST_RUN", uuid.uuid4().hex[:8])

# Short memory timers, so that tests through a worker do not sit out production's pauses (0.5 s before a
# distillation is dispatched, 1.5 s of quiet before a partial batch is distilled, 2 s before the queue is ranked
# again). Through the environment, so worker processes that tests start get them too; a test that measures a
# pause sets its own value.
os.environ.setdefault("MEMALIGN_DISTILL_DELAY_MS", "50")
os.environ.setdefault("MEMALIGN_DISTILL_QUIET_MS", "300")
os.environ.setdefault("MEMALIGN_QUEUE_RANK_DELAY_MS", "100")
# One thread per embedding (memory/embeddings.py): the suite runs two processes on two cores.
os.environ.setdefault("MEMALIGN_EMBED_THREADS", "1")

from memalign_site.settings import *  # noqa: E402,F403

CELERY_TASK_DEFAULT_QUEUE = os.environ.get("MEMALIGN_TEST_QUEUE") or f"memalign-test-{os.environ['MEMALIGN_TEST_RUN']}"
MEMALIGN_EMBED_QUEUE = f"{CELERY_TASK_DEFAULT_QUEUE}-embed"  # routed queues are the run's own too
CELERY_TASK_QUEUES = celery_queues(CELERY_TASK_DEFAULT_QUEUE, MEMALIGN_EMBED_QUEUE)  # noqa: F405
MEMALIGN_NAMESPACE = f"memalign-test-{os.environ['MEMALIGN_TEST_RUN']}"

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
# The suite's shared worker must not repair projects behind the tests' backs; the outage test's worker process turns it on.
MEMALIGN_REPAIR_ON_CONNECT = os.environ.get("MEMALIGN_REPAIR_ON_CONNECT") == "1"
CACHES["api"]["KEY_PREFIX"] = MEMALIGN_NAMESPACE  # noqa: F405
