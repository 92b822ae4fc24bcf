"""Benchmark: the judge's prompt size and cost per verdict at 20, 200 and 1,200 principles, with and without
the working-memory budget.

    .venv/bin/python bench/working_memory_size.py
    .venv/bin/python bench/working_memory_size.py --budget 4000 --counts 20,200,1200

The prompt is what the Anthropic provider sends (memory.llm.prompts.judge_system + judge_user) for a
FeedbackQA item with 5 retrieved FeedbackQA examples; principles are FeedbackQA rationales written as the
offline distiller writes them. Tokens are estimated at 4 characters a token (the fake server's count; real
tokenisation differs by some 10-20%). Cost uses the prices given on the command line (defaults: USD 3 per
million input tokens, 3.75 per million cache-write tokens, 0.30 per million cache-read tokens, 15 per million
output tokens, 80 output tokens a verdict). The stable prefix (instructions, criterion, principles) is cached:
- all principles: one prefix for the whole run, written once and then read from the cache;
- over the budget, in a run: the principles are chosen once per chunk (memory.budget.within_budget over the
  chunk's items, judging.runs.CHUNK_SIZE of them), so the first call of a chunk writes the prefix and the
  others read it;
- over the budget, one item alone ("try the judge"): its own prefix, written and never read again.
No database or services are needed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import footer, header, load_jsonl  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--counts", default="20,200,1200")
    parser.add_argument("--budget", type=int, default=4_000, help="principle tokens per verdict (the project default)")
    parser.add_argument("--input-price", type=float, default=3.0)
    parser.add_argument("--cache-write-price", type=float, default=3.75)
    parser.add_argument("--cache-price", type=float, default=0.30)
    parser.add_argument("--output-price", type=float, default=15.0)
    parser.add_argument("--output-tokens", type=int, default=80)
    args = parser.parse_args()

    import os
    import tempfile

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memalign_site.settings_test")
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="mab-wm-"))  # nothing is written there
    import django

    django.setup()  # the prompt builders live beside Django models; no database is opened
    from judging.runs import CHUNK_SIZE
    from memory.budget import CHARS_PER_TOKEN, principle_tokens
    from memory.llm.base import Example, LabelSchema, PrincipleText, WorkingMemory
    from memory.llm.prompts import judge_system, judge_user

    header("aligned judge: prompt size and cost per verdict against the number of principles")
    records = load_jsonl("feedbackqa")
    if not records:
        print("  ../shared/datasets/feedbackqa.jsonl is absent: nothing to measure")
        return 0
    rationales = [r["rationale"] for r in records if r.get("rationale")]
    criterion, labels = records[0]["criterion"], records[0]["meta"]["label_space"]
    item, neighbours = records[0], records[1:6]
    examples = [
        Example(i, n["inputs"]["question"], n["outputs"], n["label"], n.get("rationale") or "", similarity=0.8)
        for i, n in enumerate(neighbours)
    ]
    per_million = 1_000_000
    for count in [int(c) for c in args.counts.split(",") if c]:
        principles = [
            PrincipleText(
                i,
                f'When judging "{criterion[:60]}": {rationales[i % len(rationales)]} (experts chose {labels[i % len(labels)]}).',
            )
            for i in range(count)
        ]
        within, used = [], 0
        for p in principles:  # the budget's cut, in the order the judge fills it (here: as listed)
            if used + principle_tokens(p) <= args.budget:
                within.append(p)
                used += principle_tokens(p)
        for name, chosen in (("all principles", principles), (f"budget {args.budget:,}", within)):
            memory = WorkingMemory(
                criterion,
                LabelSchema("categorical", labels),
                chosen,
                examples,
                item["inputs"]["question"],
                item["outputs"],
            )
            prefix, rest = judge_system(memory), judge_user(memory)
            prefix_tokens, rest_tokens = len(prefix) // CHARS_PER_TOKEN, len(rest) // CHARS_PER_TOKEN
            fixed = (rest_tokens * args.input_price + args.output_tokens * args.output_price) / per_million
            read = fixed + prefix_tokens * args.cache_price / per_million
            written = fixed + prefix_tokens * args.cache_write_price / per_million
            uncached = fixed + prefix_tokens * args.input_price / per_million
            if len(chosen) == count:  # every principle: one prefix for the whole run, read from the cache
                costs = f"in a run ${read:.5f} (prefix cached); uncached ${uncached:.5f}"
            else:  # chosen once per chunk: written by the chunk's first call, read by the others
                in_run = (written + (CHUNK_SIZE - 1) * read) / CHUNK_SIZE
                costs = (
                    f"in a run ${in_run:.5f} (prefix shared by a chunk of {CHUNK_SIZE}); one item alone ${written:.5f}"
                )
            print(
                f"  {count:>5,} principles, {name:>16}: {len(chosen):>5,} in the prompt, {len(prefix) + len(rest):>8,} characters "
                f"(~{prefix_tokens + rest_tokens:>6,} tokens, prefix {prefix_tokens:,}); cost per verdict {costs}"
            )
    footer()
    return 0


if __name__ == "__main__":
    sys.exit(main())
