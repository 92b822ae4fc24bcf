"""The per-project provider slot limiter on the real (embedded or configured) Redis."""

import threading
import time

import pytest

from memory import limiter


@pytest.fixture
def short_leases(monkeypatch):
    monkeypatch.setattr(limiter, "LEASE_SECONDS", 0.4)
    monkeypatch.setattr(limiter, "RENEW_SECONDS", 0.1)
    project_id = 10_000 + time.monotonic_ns() % 10_000  # a key no other test uses
    yield project_id
    limiter.get_redis().delete(limiter._key(project_id))


def test_a_held_slot_outlives_its_lease_while_its_call_runs(short_leases):
    held, release = threading.Event(), threading.Event()

    def call():
        with limiter.provider_slot(short_leases, 1):
            held.set()
            release.wait(5)

    worker = threading.Thread(target=call)
    worker.start()
    held.wait(5)
    with (
        pytest.raises(limiter.SlotTimeout),
        limiter.provider_slot(short_leases, 1, timeout=1.2),  # three lease lengths: renewed all along
    ):
        pass
    release.set()
    worker.join(5)
    with limiter.provider_slot(short_leases, 1, timeout=1):  # given back at the end of the call
        assert limiter.get_redis().zcard(limiter._key(short_leases)) == 1  # leases held


def test_a_dead_holders_slot_frees_itself_when_its_lease_ends(short_leases):
    # A worker killed mid-call leaves its lease behind, and no heartbeat renews it.
    limiter.get_redis().zadd(limiter._key(short_leases), {"killed-worker": time.time() + 60})
    with pytest.raises(limiter.SlotTimeout), limiter.provider_slot(short_leases, 1, timeout=0.2):
        pass
    limiter.get_redis().zadd(limiter._key(short_leases), {"killed-worker": time.time() + 0.3})  # its lease runs out
    with limiter.provider_slot(short_leases, 1, timeout=5):
        assert limiter.get_redis().zcard(limiter._key(short_leases)) == 1  # the dead lease was dropped
