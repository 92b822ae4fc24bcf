"""Benchmark: bursts of critiques → principle distillation, counted at a fake Anthropic server.

    .venv/bin/python bench/distill_burst.py
    .venv/bin/python bench/distill_burst.py --bursts 10,100 --latency 0.5 --no-offline

For each burst size (default 10, 100, 300) a fresh project with provider "anthropic" gets that many critiques
saved as fast as reviews.feedback.save_feedback returns (FeedbackQA samples and rationales). The memory
signals dispatch the work on commit; real `celery worker` subprocesses (by default those `make run` starts: one
process for the embedding queue, one for the rest) embed the samples and distil the critiques, calling the fake Messages
API (tests/fake_anthropic.py, run in this process on 127.0.0.1 with `--latency` seconds per request) through
the real SDK: ANTHROPIC_API_KEY=test-key and ANTHROPIC_BASE_URL=<fake url> are in the worker's environment.

Reported per burst: distillation calls the server received (tool "record_principles", retries included)
against the design's bound ceil(n / MEMALIGN_DISTILL_BATCH_SIZE) + 1, other calls (consolidation), the wall
time from the first save until every critique is distilled (memory.distil.pending_feedback empty) and
until the episodic store holds all of them, and the tokens recorded in MemoryVersion.usage. Then one burst
of 100 with the offline provider (no server), for its wall time. Settings are the product's defaults
(batch size, quiet period, dispatch delay), printed with the figures. Exits 1 if a burst breaks the bound.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Environment, add_worker_options, footer, header, review_records, wait_for  # noqa: E402

DISTILL = "record_principles"


def idle(fake, project, timeout: float) -> None:
    """Wait until the project's regeneration is neither queued nor running and the server saw no call for 2 s."""
    from django.conf import settings

    from memory.redis_client import get_redis

    redis = get_redis()
    keys = [f"{settings.MEMALIGN_NAMESPACE}:{kind}:{project.pk}" for kind in ("regen-queued", "regen-lock")]
    deadline = time.monotonic() + timeout
    last_count, quiet_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = fake.request_count if fake is not None else 0
        if count != last_count or any(redis.exists(k) for k in keys):
            last_count, quiet_since = count, time.monotonic()
        elif time.monotonic() - quiet_since >= 2.0:
            return
        time.sleep(0.1)
    raise TimeoutError("the project's regeneration did not settle")


def burst(
    n: int, provider: str, records: list[dict], owner, reviewer, criterion: str, labels: list[str], fake, timeout: float
) -> dict:
    from memory import distil, episodic
    from memory.models import MemoryVersion, Principle
    from reviews.feedback import save_feedback
    from reviews.models import Membership, Role, Sample
    from reviews.projects import create_project

    project = create_project(
        owner, name=f"Bench burst {provider} {n}", criterion=criterion, label_kind="categorical", categories=labels
    )
    project.provider = provider
    project.save(update_fields=["provider"])
    Membership.objects.create(project=project, user=reviewer, role=Role.REVIEWER)
    samples = [
        Sample.objects.create(
            project=project,
            external_id=r["id"],
            inputs=r["inputs"],
            outputs=r["outputs"],
            judge_value="Excellent",
            judge_rationale="The passage answers the question.",
        )
        for r in records[:n]
    ]
    if fake is not None:
        fake.reset()

    started, started_wall = time.monotonic(), time.time()
    for sample, record in zip(samples, records):
        save_feedback(sample, reviewer, record["label"], record["rationale"])
    saving = time.monotonic() - started
    wait_for(lambda: not distil.pending_feedback(project).exists(), timeout, f"{n} critiques distilled", 0.05)
    distilled = time.monotonic() - started
    print(
        f"  burst of {n} ({provider}): saved in {saving:.2f} s, all distilled {distilled:.1f} s after the first save "
        f"({distilled - saving:.1f} s after the last); {fake.tool_counts.get(DISTILL, 0) if fake else '-'} distillation calls, "
        f"at most {fake.max_in_flight if fake else '-'} in flight",
        flush=True,
    )
    wait_for(lambda: len(episodic.entries(project.pk)) == n, timeout, f"{n} episodic entries", 0.1)
    embedded = time.monotonic() - started
    idle(fake, project, timeout)  # consolidation may follow the last distillation in the same run

    tools = Counter(fake.tool_counts) if fake is not None else Counter()
    first_call = (
        min(r.received_at for r in fake.requests) - started_wall if fake is not None and fake.requests else None
    )
    versions = list(MemoryVersion.objects.filter(project=project).order_by("number"))
    usage = Counter()
    for version in versions:
        usage.update({k: v for k, v in (version.usage or {}).items() if isinstance(v, int)})
    return {
        "n": n,
        "provider": provider,
        "saving_s": saving,
        "distilled_s": distilled,
        "embedded_s": embedded,
        "max_in_flight": fake.max_in_flight if fake is not None else None,
        "concurrency": project.provider_concurrency,
        "distill_calls": tools.get(DISTILL, 0),
        "tools": dict(tools),
        "first_call_s": first_call,
        "versions": Counter(f"{v.trigger}{'' if v.status == 'ok' else ' (' + v.status + ')'}" for v in versions),
        "usage": dict(usage),
        "principles": Principle.objects.filter(project=project, retired=False).count(),
    }


def imported(
    n: int, records: list[dict], owner, reviewer, criterion: str, labels: list[str], fake, timeout: float
) -> dict:
    """n critiques arriving at once, as one import (what MLflow's optimizer is handed): time to all distilled."""
    import io
    import json

    from memory import distil
    from reviews.importers import import_samples
    from reviews.models import Membership, Role
    from reviews.projects import create_project

    project = create_project(
        owner, name=f"Bench import {n}", criterion=criterion, label_kind="categorical", categories=labels
    )
    project.provider = "anthropic"
    project.save(update_fields=["provider"])
    Membership.objects.create(project=project, user=reviewer, role=Role.REVIEWER)
    lines = [
        json.dumps(
            {
                "external_id": f"imp-{i}-{r['id']}",
                "inputs": r["inputs"],
                "outputs": r["outputs"],
                "expert_label": r["label"],
                "expert_critique": r["rationale"],
                "reviewer": reviewer.username,
            }
        )
        for i, r in enumerate(records[:n])
    ]
    fake.reset()
    import_samples(project, io.BytesIO("\n".join(lines).encode()), "burst.jsonl", owner)
    started = time.monotonic()  # the import has committed: from here on, the memory's work
    wait_for(lambda: not distil.pending_feedback(project).exists(), timeout, f"{n} imported critiques distilled", 0.05)
    distilled = time.monotonic() - started
    result = {
        "n": n,
        "distilled_s": distilled,
        "distill_calls": fake.tool_counts.get(DISTILL, 0),
        "max_in_flight": fake.max_in_flight,
        "concurrency": project.provider_concurrency,
    }
    print(
        f"  import of {n}: all distilled {distilled:.1f} s after the import committed; {result['distill_calls']} "
        f"distillation calls, at most {result['max_in_flight']} in flight (project concurrency {result['concurrency']})",
        flush=True,
    )
    idle(fake, project, timeout)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bursts", default="10,100,300", help="burst sizes, comma-separated")
    parser.add_argument("--latency", type=float, default=0.2, help="seconds the fake server takes per request")
    parser.add_argument("--imported", type=int, default=0, help="also n critiques arriving as one import (0: none)")
    parser.add_argument(
        "--offline", action=argparse.BooleanOptionalAction, default=True, help="also a 100-burst, offline provider"
    )
    add_worker_options(parser)
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds allowed per burst")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folder")
    args = parser.parse_args()
    sizes = [int(s) for s in args.bursts.split(",") if s]

    from tests.fake_anthropic import FakeAnthropic

    records, criterion, labels, source = review_records(
        sum(sizes) + (100 if args.offline else 0) + args.imported, seed=23
    )
    with FakeAnthropic(latency=args.latency) as fake:
        env_vars = {"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": fake.url}
        with Environment("distill", env=env_vars, keep=args.keep) as env:
            if args.workers == "site":
                env.start_site_workers()
            else:
                env.start_worker(concurrency=args.concurrency)
            from django.conf import settings
            from django.contrib.auth import get_user_model

            header("critique bursts → distillation calls (fake Anthropic server)", env)
            batch = settings.MEMALIGN_DISTILL_BATCH_SIZE
            print(f"  fake Messages API at {fake.url}, {args.latency * 1000:.0f} ms per request; samples: {source}")
            print(
                f"  settings: MEMALIGN_DISTILL_BATCH_SIZE={batch}, MEMALIGN_DISTILL_BATCH_TOKENS={settings.MEMALIGN_DISTILL_BATCH_TOKENS}, "
                f"quiet {settings.MEMALIGN_DISTILL_QUIET_SECONDS:.1f} s, dispatch delay {settings.MEMALIGN_DISTILL_DELAY_SECONDS:.1f} s, "
                f"consolidate every {settings.MEMALIGN_CONSOLIDATE_EVERY} distillations"
            )
            sys.stdout.flush()
            if settings.MEMALIGN_PROVIDER != "anthropic" or not settings.ANTHROPIC_BASE_URL.startswith(
                "http://127.0.0.1:"
            ):
                raise RuntimeError("the settings did not keep the fake server's key and URL")

            User = get_user_model()
            owner, reviewer = User.objects.create_user("bench-owner"), User.objects.create_user("bench-reviewer")
            results, offset = [], 0
            runs = [(n, "anthropic") for n in sizes] + ([(100, "offline")] if args.offline else [])
            for n, provider in runs:
                chunk = records[offset : offset + n]
                offset += n
                result = burst(
                    n,
                    provider,
                    chunk,
                    owner,
                    reviewer,
                    criterion,
                    labels,
                    fake if provider == "anthropic" else None,
                    args.timeout,
                )
                results.append(result)
                print(f"  burst of {n} ({provider}): distilled {result['distilled_s']:.1f} s after the first save")
                sys.stdout.flush()

            if args.imported:
                chunk = records[offset : offset + args.imported]
                offset += args.imported
                result = imported(args.imported, chunk, owner, reviewer, criterion, labels, fake, args.timeout)
                bound = math.ceil(args.imported / batch) + 1
                if result["distill_calls"] > bound or result["max_in_flight"] > result["concurrency"]:
                    print(f"FAILED: the import broke the call bound {bound} or the concurrency limit", file=sys.stderr)
                    return 1

        print()
        violations = []
        for r in results:
            print(
                f"burst of {r['n']}, provider {r['provider']}: saved in {r['saving_s']:.2f} s; "
                f"all distilled {r['distilled_s']:.1f} s after the first save, {r['distilled_s'] - r['saving_s']:.1f} s "
                f"after the last; all retrievable {r['embedded_s']:.1f} s after the first save"
            )
            if r["provider"] == "anthropic":
                bound = math.ceil(r["n"] / batch) + 1
                verdict = "within" if 1 <= r["distill_calls"] <= bound else "BOUND VIOLATED"
                if verdict != "within" or r["max_in_flight"] > r["concurrency"]:
                    violations.append(r["n"])
                others = {k: v for k, v in r["tools"].items() if k != DISTILL}
                print(
                    f"  calls in flight at the server: at most {r['max_in_flight']} (project concurrency {r['concurrency']})"
                )
                print(
                    f"  distillation calls ({DISTILL}): {r['distill_calls']}  (bound ceil({r['n']}/{batch}) + 1 = {bound}: {verdict}); "
                    f"other calls: {others or 'none'}; first call {r['first_call_s']:.1f} s after the first save"
                )
                u = r["usage"]
                print(
                    f"  MemoryVersion.usage summed: {u.get('calls', 0)} calls, input {u.get('input_tokens', 0):,}, "
                    f"output {u.get('output_tokens', 0):,}, cache read {u.get('cache_read_tokens', 0):,}, "
                    f"cache creation {u.get('cache_creation_tokens', 0):,} tokens"
                )
            print(f"  versions: {dict(r['versions'])}; active principles: {r['principles']}")
        footer()
        if violations:
            print(f"\nFAILED: the distillation-call bound was broken for bursts of {violations}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
