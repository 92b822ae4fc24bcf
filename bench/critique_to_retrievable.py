"""Benchmark: a critique saved → retrievable from the episodic store, through a real Celery worker.

    .venv/bin/python bench/critique_to_retrievable.py
    .venv/bin/python bench/critique_to_retrievable.py --count 50 --interval 0.5 --concurrency 1

The path measured is the product's: reviews.feedback.save_feedback commits the Feedback, the memory signal
notes its id and queues update_episodic on commit (once per project while one is queued), a `celery worker`
subprocess reads the noted feedback and their samples' stored vectors (made once when the sample was created,
memory/vectors.py; here before the clock runs, as the background task does after
an import) and upserts them into the Chroma server in one call. The clock starts when save_feedback is called (it includes
the commit and the dispatch) and stops when a top-5 Chroma query with the sample's own vector returns the
feedback id: the critique is then retrievable by similarity. A poller thread checks every few milliseconds
(one `get(ids=…)` for every outstanding id, then one batched query for the ids that appeared).

Two phases, each on its own project of 100 FeedbackQA samples (question, answer passage, the annotator's
rationale as the critique): spaced like a reviewer (one save every 300 ms) and back-to-back (as fast as
save_feedback returns). The project's provider is the default offline one, so the worker also runs the
coalesced principle regeneration in between, as it would in production.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Environment, footer, header, review_records, summary_ms, wait_for  # noqa: E402


class Poller(threading.Thread):
    """Records, per feedback id, when it first appears in the collection and when a query first returns it."""

    def __init__(self, project_id: int, interval: float) -> None:
        super().__init__(name="retrievable-poller", daemon=True)
        from memory import episodic

        self.store = episodic.collection(project_id)
        self.interval = interval
        self.lock = threading.Lock()
        self.vectors: dict[str, list[float]] = {}  # outstanding id -> its query vector
        self.present: dict[str, float] = {}  # id -> monotonic time first seen by get()
        self.retrievable: dict[str, float] = {}  # id -> monotonic time first returned by a top-5 query
        self.cycles = 0
        self.error: BaseException | None = None
        self.stopping = threading.Event()

    def watch(self, feedback_id: int, vector: list[float]) -> None:
        with self.lock:
            self.vectors[str(feedback_id)] = vector

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                self.poll()
                self.stopping.wait(self.interval)
        except BaseException as error:  # reported by the main thread
            self.error = error

    def poll(self) -> None:
        with self.lock:
            waiting = [i for i in self.vectors if i not in self.retrievable]
        if not waiting:
            return
        unseen = [i for i in waiting if i not in self.present]
        if unseen:
            found = self.store.get(ids=unseen, include=[])["ids"]
            now = time.monotonic()
            for entry_id in found:
                self.present.setdefault(entry_id, now)
        candidates = [i for i in waiting if i in self.present]
        if candidates:
            result = self.store.query(query_embeddings=[self.vectors[i] for i in candidates], n_results=5, include=[])
            now = time.monotonic()
            for entry_id, hits in zip(candidates, result["ids"]):
                if entry_id in hits:
                    self.retrievable.setdefault(entry_id, now)
        self.cycles += 1


def run_phase(
    name: str, records: list[dict], project, reviewer, interval: float, poll_interval: float, timeout: float
) -> dict:
    from memory import vectors as sample_vectors
    from reviews.feedback import save_feedback
    from reviews.models import Sample

    samples = [
        Sample.objects.create(
            project=project,
            external_id=r["id"],
            inputs=r["inputs"],
            outputs=r["outputs"],
            judge_value="Excellent",
            judge_rationale="The passage answers the question.",
        )
        for r in records
    ]
    vectors = sample_vectors.for_samples(samples)  # stored as after an import; also the query vectors
    poller = Poller(project.pk, poll_interval)
    poller.start()
    saved_at: dict[str, float] = {}
    save_seconds: list[float] = []
    save_offsets: list[float] = []
    started, started_wall = time.monotonic(), time.time()
    try:
        for n, (sample, record, vector) in enumerate(zip(samples, records, vectors)):
            if interval:
                time.sleep(max(0.0, started + n * interval - time.monotonic()))  # a fixed schedule: no drift
            t0 = time.monotonic()
            feedback, created = save_feedback(sample, reviewer, record["label"], record["rationale"])
            t1 = time.monotonic()
            assert created
            saved_at[str(feedback.pk)] = t0
            save_seconds.append(t1 - t0)
            save_offsets.append(t0 - started)
            poller.watch(feedback.pk, vector.tolist())
        saving = time.monotonic() - started
        wait_for(
            lambda: poller.error is not None or len(poller.retrievable) == len(samples),
            timeout,
            f"{len(samples)} critiques to become retrievable ({name})",
        )
        if poller.error is not None:
            raise poller.error
    finally:
        poller.stopping.set()
        poller.join(5)
    latencies = [poller.retrievable[i] - saved_at[i] for i in saved_at]
    present = [poller.present[i] - saved_at[i] for i in saved_at]
    return {
        "name": name,
        "count": len(samples),
        "saving_s": saving,
        "latencies": latencies,
        "present": present,
        "save": save_seconds,
        "save_offsets": save_offsets,
        "cycles": poller.cycles,
        "started_wall": started_wall,
        "all_done_s": max(poller.retrievable.values()) - started,
        "project": project,
    }


def regeneration_windows(phase: dict) -> list[tuple[float, float, str]]:
    """(start, end, summary) of the phase project's memory versions, in seconds since the phase's first save."""
    from memory.models import MemoryVersion

    windows = []
    for version in MemoryVersion.objects.filter(project=phase["project"]).order_by("number"):
        end = version.created_at.timestamp() - phase["started_wall"]
        windows.append((end - version.duration_ms / 1000, end, version.summary))
    return windows


def step_costs(project, count: int = 30) -> dict[str, list[float]]:
    """The steps of storing one feedback (memory.tasks.update_episodic stores a batch in one upsert), for
    `count` feedback timed one by one in this process."""
    from memory import episodic
    from memory import vectors as sample_vectors
    from reviews.models import Feedback

    ids = list(Feedback.objects.filter(project=project).order_by("id").values_list("pk", flat=True)[:count])
    steps: dict[str, list[float]] = {
        "read the feedback": [],
        "read its stored vector": [],
        "episodic.collection()": [],
        "Chroma upsert": [],
        "in all": [],
    }
    for feedback_id in ids:
        t0 = time.perf_counter()
        feedback = Feedback.objects.select_related("sample").get(pk=feedback_id)
        t1 = time.perf_counter()
        text = episodic.sample_text(feedback.sample)
        vector = sample_vectors.for_samples([feedback.sample])[0]
        t2 = time.perf_counter()
        store = episodic.collection(feedback.project_id)
        t3 = time.perf_counter()
        store.upsert(
            ids=[str(feedback.pk)],
            embeddings=[vector.tolist()],
            documents=[text],
            metadatas=[
                {
                    "sample_id": feedback.sample_id,
                    "label": feedback.label,
                    "author_id": feedback.author_id,
                    "project_id": feedback.project_id,
                    "revision": feedback.revision,
                    "scheme": sample_vectors.SCHEME,
                }
            ],
        )
        t4 = time.perf_counter()
        for name, a, b in zip(steps, (t0, t1, t2, t3, t0), (t1, t2, t3, t4, t4)):
            steps[name].append(b - a)
    return steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100, help="critiques per phase (default 100)")
    parser.add_argument("--interval", type=float, default=0.3, help="seconds between saves in the spaced phase")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes (default 2, as `make run`)")
    parser.add_argument("--pool", default="prefork")
    parser.add_argument("--poll-ms", type=float, default=5.0, help="pause between polls of the store")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folder")
    args = parser.parse_args()

    records, criterion, labels, source = review_records(2 * args.count)
    with Environment("retrievable", keep=args.keep) as env:
        env.start_worker(concurrency=args.concurrency, pool=args.pool)
        header("critique saved → retrievable in Chroma (through the real worker)", env)
        print(f"  samples: {source}; critique = the annotator's rationale; provider: offline (site default)")
        print(
            f"  clock: from the save_feedback call to the first top-5 query (sample's own vector) returning the id;"
            f" poll every {args.poll_ms:.0f} ms"
        )
        sys.stdout.flush()

        from django.contrib.auth import get_user_model

        from reviews.models import Membership, Role
        from reviews.projects import create_project

        User = get_user_model()
        owner, reviewer = User.objects.create_user("bench-owner"), User.objects.create_user("bench-reviewer")
        phases = []
        for n, (name, interval) in enumerate(
            ((f"spaced, one every {args.interval * 1000:.0f} ms", args.interval), ("back-to-back", 0.0))
        ):
            project = create_project(
                owner, name=f"Bench retrievable {n}", criterion=criterion, label_kind="categorical", categories=labels
            )
            Membership.objects.create(project=project, user=reviewer, role=Role.REVIEWER)
            chunk = records[n * args.count : (n + 1) * args.count]
            phases.append(run_phase(name, chunk, project, reviewer, interval, args.poll_ms / 1000, args.timeout))
            # Let the worker finish what the phase queued (regeneration) before the next phase starts.
            from memory import distil

            wait_for(
                lambda project=project: not distil.pending_feedback(project).exists(),
                args.timeout,
                "the phase's distillation",
                0.2,
            )
            time.sleep(1.0)

        print()
        for phase in phases:
            print(
                f"{phase['name']}: {phase['count']} critiques saved in {phase['saving_s']:.1f} s, "
                f"all retrievable {phase['all_done_s']:.1f} s after the first save, "
                f"{phase['all_done_s'] - phase['save_offsets'][-1]:.1f} s after the last"
            )
            print(f"  save → retrievable (query)   {summary_ms(phase['latencies'])}")
            print(f"  save → present (get by id)   {summary_ms(phase['present'])}")
            print(f"  save_feedback itself         {summary_ms(phase['save'])}")
            slow = sorted(zip(phase["save"], phase["save_offsets"]), reverse=True)[:3]
            windows = regeneration_windows(phase)
            for seconds, offset in slow:
                if seconds < 0.25:
                    break
                during = [w for w in windows if w[0] - 0.05 <= offset <= w[1] + 0.05]
                print(
                    f"    a save_feedback of {seconds * 1000:.0f} ms at t={offset:.1f} s"
                    + (
                        f", during a regeneration run ({during[0][0]:.1f}-{during[0][1]:.1f} s: {during[0][2]})"
                        if during
                        else ""
                    )
                )
            print(
                "  regeneration runs of the phase: " + "; ".join(f"{a:.1f}-{b:.1f} s {text}" for a, b, text in windows)
            )
        steps = step_costs(phases[-1]["project"])
        print("\nthe steps of storing a critique, one at a time, timed in this process with the worker idle:")
        for name, values in steps.items():
            print(f"  {name:24s} {summary_ms(values)}")
    footer()
    return 0


if __name__ == "__main__":
    sys.exit(main())
