"""The review queue: each filter and its count, stable order, keyset pagination, search, neighbours, the page."""

from __future__ import annotations

import random
import re

import pytest
from django.db import connection

from reviews import queue
from reviews.feedback import save_feedback
from reviews.models import Feedback, Sample
from reviews.queue import QueueQuery
from tests.conftest import add_sample


@pytest.fixture
def reviewed(personas):
    """Eight samples: s1..s8. Judge: pass for odd, fail for even, none for s8.

    rafael (reviewer): s1 agrees, s2 disagrees, s8 (no verdict).  olivia (owner): s2 agrees, s3 disagrees.
    Five reviews per sample: "needs my review" is every sample I have not reviewed (tests/test_overlap.py has
    the fewer-slots cases).
    """
    personas.project.reviews_per_sample = 5
    personas.project.save(update_fields=["reviews_per_sample"])
    samples = [
        add_sample(
            personas.project,
            f"s{n}",
            judge_value="" if n == 8 else ("pass" if n % 2 else "fail"),
            outputs=f"answer {n}" + (" mentions a Crème brûlée refund" if n == 5 else ""),
        )
        for n in range(1, 9)
    ]
    s = {n: samples[n - 1] for n in range(1, 9)}
    save_feedback(s[1], personas.reviewer, "pass", "")
    save_feedback(s[2], personas.reviewer, "pass", "The judge was too strict.")
    save_feedback(s[8], personas.reviewer, "fail", "")
    save_feedback(s[2], personas.owner, "fail", "")
    save_feedback(s[3], personas.owner, "fail", "Curt.")
    add_sample(personas.other, "foreign", judge_value="pass")  # another project's sample never shows
    return s


def ids(qs) -> list[str]:
    return [sample.external_id for sample in qs]


def names(personas, user, **query) -> list[str]:
    return ids(queue.samples(personas.project, user, QueueQuery(**query)))


def test_each_filter(personas, reviewed):
    me = personas.reviewer
    assert names(personas, me, filter="todo") == ["s3", "s4", "s5", "s6", "s7"]
    assert names(personas, me, filter="unreviewed") == ["s4", "s5", "s6", "s7"]
    assert names(personas, me, filter="mine") == ["s1", "s2", "s8"]
    assert names(personas, me, filter="reviewed") == ["s1", "s2", "s3", "s8"]
    assert names(personas, me, filter="disagree") == ["s2", "s3"]  # s8 had no verdict to disagree with
    assert names(personas, me, filter="all") == [f"s{n}" for n in range(1, 9)]
    assert names(personas, personas.owner, filter="todo") == ["s1", "s4", "s5", "s6", "s7", "s8"]


def test_label_judge_and_text_filters(personas, reviewed):
    me = personas.reviewer
    assert names(personas, me, filter="all", label="fail") == ["s2", "s3", "s8"]  # anyone's expert label
    assert names(personas, me, filter="mine", label="pass") == ["s1", "s2"]
    assert names(personas, me, filter="all", judge="fail") == ["s2", "s4", "s6"]
    assert names(personas, me, filter="todo", judge="pass") == ["s3", "s5", "s7"]
    assert names(personas, me, filter="all", q="s7") == ["s7"]  # external id
    assert names(personas, me, filter="all", q="question s4") == ["s4"]  # inputs (JSON)
    assert names(personas, me, filter="all", q="crème brûlée") == ["s5"]  # outputs, non-ASCII
    if connection.vendor == "postgresql":  # SQLite's LIKE folds the case of ASCII letters only
        assert names(personas, me, filter="all", q="crème BRÛLÉE") == ["s5"]
    assert names(personas, me, filter="all", q="Looks FINE") == [f"s{n}" for n in range(1, 9)]  # rationale


def test_non_ascii_search_in_json_inputs(personas):
    add_sample(personas.project, "fr", inputs={"question": "Où est ma commande, café compris ?"})
    add_sample(personas.project, "en", inputs={"question": "Where is my order?"})
    assert names(personas, personas.owner, filter="all", q="café") == ["fr"]
    assert names(personas, personas.owner, filter="all", q="Où est") == ["fr"]


def test_search_results_show_the_inputs_as_text(client, personas):
    # The search matches the inputs' JSON text in the database; the rows found still show Sample.inputs_text()
    # (a string input as it is, not as a quoted JSON string), as without a search.
    add_sample(personas.project, "plain", inputs="Où est ma commande ?")
    found = list(queue.samples(personas.project, personas.owner, QueueQuery(filter="all", q="commande")))
    assert [sample.inputs_text() for sample in found] == ["Où est ma commande ?"]
    client.force_login(personas.owner)
    body = client.get(f"/p/{personas.project.slug}/queue/?filter=all&q=commande").content.decode()
    assert '<div class="text-cell">Où est ma commande ?</div>' in body


QUERIES = [
    {},
    {"label": "fail"},
    {"label": "pass"},
    {"judge": "pass"},
    {"judge": "fail"},
    {"q": "answer"},
    {"q": "s2"},
    {"judge": "fail", "label": "pass"},
    {"q": "nothing matches this"},
]


@pytest.mark.parametrize("extra", QUERIES, ids=[str(q) or "none" for q in QUERIES])
def test_counts_equal_the_filters_lengths(personas, reviewed, extra):
    """Counts take shortcuts (differences, feedback-side indexes): they must still agree with the filters."""
    for user in (personas.reviewer, personas.owner, personas.viewer):
        query = QueueQuery(**extra)
        counts = queue.counts(personas.project, user, query)
        assert list(counts) == list(queue.FILTERS)
        for name in queue.FILTERS:
            assert counts[name] == queue.samples(personas.project, user, query, name).count(), (user, name, extra)


def test_counts_match_filters_on_a_random_project(personas):
    """A larger randomised cross-check, with several reviewers and every kind of agreement."""
    rng = random.Random(11)
    users = [personas.owner, personas.reviewer]
    samples = [add_sample(personas.project, f"r{n}", judge_value=rng.choice(["pass", "fail", ""])) for n in range(60)]
    for sample in samples:
        for user in users:
            if rng.random() < 0.5:
                label = rng.choice(["pass", "fail"])
                save_feedback(sample, user, label, "because")
    for user in users + [personas.viewer]:
        for extra in ({}, {"judge": "pass"}, {"label": "fail"}, {"q": "r1"}):
            counts = queue.counts(personas.project, user, QueueQuery(**extra))
            expected = {
                name: queue.samples(personas.project, user, QueueQuery(**extra), name).count() for name in queue.FILTERS
            }
            assert counts == expected


def test_keyset_pages_walk_every_sample_once_in_both_directions(personas):
    made = [add_sample(personas.project, f"p{n:03d}").pk for n in range(23)]
    qs = queue.samples(personas.project, personas.owner, QueueQuery(filter="all"))
    seen, after, pages = [], None, []
    while True:
        page = queue.page(qs, after=after, size=5)
        pages.append(page)
        seen += [s.pk for s in page.items]
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == made and len(pages) == 5
    assert pages[0].prev_before is None and pages[1].prev_before == made[5]
    back, before = [], pages[-1].prev_before
    back = [s.pk for s in pages[-1].items]
    while before is not None:
        page = queue.page(qs, before=before, size=5)
        back = [s.pk for s in page.items] + back
        before = page.prev_before
    assert back == made


def test_pages_cost_a_fixed_number_of_queries(client, personas, django_assert_max_num_queries):
    for n in range(120):
        sample = add_sample(personas.project, f"q{n:03d}")
        if n % 3 == 0:
            save_feedback(sample, personas.reviewer, "pass", "")
    client.force_login(personas.reviewer)
    # 15: "needs my review" is counted by its own query (overlap), the open conflicts by another, and the
    # project's default order asks whether a teaching order has been computed.
    with django_assert_max_num_queries(15):
        first = client.get(f"/p/{personas.project.slug}/queue/?filter=all")
    with django_assert_max_num_queries(15):
        deep = client.get(f"/p/{personas.project.slug}/queue/?filter=all&after={Sample.objects.order_by('-id')[10].pk}")
    assert first.status_code == deep.status_code == 200


def test_neighbours_follow_the_queue_and_wrap_round_to_skipped_samples(personas, reviewed):
    me, todo = personas.reviewer, QueueQuery(filter="todo")
    s = reviewed
    assert queue.neighbours(personas.project, me, todo, s[3].pk) == (s[2].pk, s[4].pk)
    # At the last sample that still needs me, next wraps round to the first one I skipped.
    assert queue.neighbours(personas.project, me, todo, s[7].pk) == (s[6].pk, s[3].pk)
    # Previous walks the whole project: what I just reviewed has left "todo".
    assert queue.neighbours(personas.project, me, todo, s[3].pk)[0] == s[2].pk
    mine = QueueQuery(filter="mine")
    assert queue.neighbours(personas.project, me, mine, s[2].pk) == (s[1].pk, s[8].pk)
    assert queue.neighbours(personas.project, me, mine, s[8].pk) == (s[2].pk, None)  # "mine" does not wrap
    everything_done = QueueQuery(filter="todo", judge="fail", q="s6")
    save_feedback(s[6], me, "fail", "")
    assert queue.neighbours(personas.project, me, everything_done, s[6].pk)[1] is None


def test_query_from_params_is_defensive():
    query = QueueQuery.from_params({"filter": "bogus", "label": "x" * 500, "q": "  hi  "}, "todo")
    assert (query.filter, len(query.label), query.q) == ("todo", 64, "hi")
    assert QueueQuery.from_params({"label": "pa\x00ss", "q": "\x00"}, "all") == QueueQuery(filter="all", label="pass")
    assert query.params() == {"filter": "todo", "label": "x" * 64, "q": "hi"}


# The page --------------------------------------------------------------------------------------------------


def test_queue_page_shows_counts_rows_and_my_labels(client, personas, reviewed):
    client.force_login(personas.reviewer)
    body = client.get(f"/p/{personas.project.slug}/queue/").content.decode()
    # disagree: s2 only; s3's disagreement is olivia's, on a sample rafael has not reviewed (blind review).
    for name, count in {"todo": 5, "unreviewed": 4, "mine": 3, "reviewed": 4, "disagree": 1, "all": 8}.items():
        assert f'data-filter="{name}">' in body
        assert f'{queue.FILTERS[name]} <span class="count">{count}</span>' in body
    assert 'class="filter active" data-filter="todo"' in body  # reviewers start with what needs them
    assert body.index(f'data-sample-id="{reviewed[3].pk}"') < body.index(f'data-sample-id="{reviewed[7].pk}"')
    assert f'data-sample-id="{reviewed[1].pk}"' not in body
    body = client.get(f"/p/{personas.project.slug}/queue/?filter=mine").content.decode()
    # Not by colour alone: a sign and words say agree or disagree.
    assert (
        '<span class="badge agree"><span aria-hidden="true">✓ </span>pass<span class="visually-hidden"> (agrees' in body
    )
    assert (
        '<span class="badge disagree"><span aria-hidden="true">≠ </span>pass<span class="visually-hidden"> (disag'
        in body
    )
    assert '<span class="badge">fail</span>' in body  # s8: no verdict, neither agreement nor disagreement


def test_viewers_start_with_everything(client, personas, reviewed):
    client.force_login(personas.viewer)
    body = client.get(f"/p/{personas.project.slug}/queue/").content.decode()
    assert 'class="filter active" data-filter="all"' in body
    assert "Review the first one" not in body


def test_queue_page_pagination_links_keep_the_filters(client, personas):
    personas.project.judge_blind = False  # the "judge said" filter is for projects that show the verdict
    personas.project.save(update_fields=["judge_blind"])
    for n in range(60):
        add_sample(personas.project, f"x{n:02d}", judge_value="fail")
    client.force_login(personas.owner)
    body = client.get(f"/p/{personas.project.slug}/queue/?filter=all&judge=fail&q=x").content.decode()
    last = Sample.objects.order_by("id")[49].pk
    assert f'href="?filter=all&amp;judge=fail&amp;q=x&amp;order=plain&after={last}" rel="next"' in body
    body = client.get(f"/p/{personas.project.slug}/queue/?filter=all&judge=fail&q=x&after={last}").content.decode()
    assert 'rel="prev"' in body and 'rel="next"' not in body
    assert body.count('data-sample-id="') == 10


def test_queue_page_survives_junk_parameters(client, personas, reviewed):
    client.force_login(personas.reviewer)
    junk = (
        "after=abc",
        "before=-1",
        "after=99999999999999999999999",
        "filter=<script>",
        "q=" + "%25" * 300,
        "judge=<b>",
    )
    for params in junk:
        response = client.get(f"/p/{personas.project.slug}/queue/?{params}")
        assert response.status_code == 200, params
        assert client.get(f"/p/{personas.project.slug}/samples/{reviewed[3].pk}/?{params}").status_code == 200, params
        assert "<script>" not in response.content.decode().split("<main>")[1].split("</main>")[0].replace(
            "&lt;script&gt;", ""
        )
    # A NUL byte in the query string is refused before any view (memalign_site.middleware.NulGuardMiddleware).
    for params in ("label=%00", "q=a%00b", "judge=%00"):
        assert client.get(f"/p/{personas.project.slug}/queue/?{params}").status_code == 400, params


def test_queue_escapes_untrusted_text(client, personas):
    add_sample(personas.project, "<img src=x onerror=alert(1)>", inputs={"q": "<script>alert(2)</script>"})
    client.force_login(personas.owner)
    body = client.get(f"/p/{personas.project.slug}/queue/?filter=all").content.decode()
    assert "&lt;img src=x onerror=alert(1)&gt;" in body and "<img src=x" not in body
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in body
    assert "<script>alert(2)" not in body


def test_feedback_of_a_removed_sample_leaves_counts_consistent(personas, reviewed):
    Sample.objects.filter(pk=reviewed[2].pk).delete()
    assert not Feedback.objects.filter(sample_id=reviewed[2].pk).exists()
    counts = queue.counts(personas.project, personas.reviewer, QueueQuery())
    assert counts == {"todo": 5, "unreviewed": 4, "mine": 2, "reviewed": 3, "disagree": 1, "all": 7}


def empty_queue(client, personas, **params) -> str:
    """The queue page's sentence for an empty list, and which filters it offers."""
    body = client.get(f"/p/{personas.project.slug}/queue/", params).content.decode()
    found = re.search(r'<p class="muted empty"[^>]*>(.*?)</p>', body, re.S)
    return found.group(1) if found else ""


def test_an_empty_queue_says_why(client, personas):
    client.force_login(personas.reviewer)
    said = empty_queue(client, personas)
    assert "No samples yet." in said and "reviewed every sample" not in said and "/import/" not in said
    client.force_login(personas.owner)
    assert "/import/" in empty_queue(client, personas)  # who can import is shown where
    client.force_login(personas.reviewer)
    a, b = (add_sample(personas.project, name) for name in "ab")
    save_feedback(a, personas.owner, "pass", "")  # one review per sample: the others covered a and b
    save_feedback(b, personas.owner, "pass", "")
    said = empty_queue(client, personas)
    assert "reviewed every sample" not in said and "the other reviewers have reviewed" in said
    save_feedback(a, personas.reviewer, "pass", "")
    save_feedback(b, personas.reviewer, "pass", "")
    assert "You have reviewed every sample." in empty_queue(client, personas)


def test_a_viewer_is_not_offered_the_reviewers_filters(client, personas):
    add_sample(personas.project, "a")
    client.force_login(personas.viewer)
    body = client.get(f"/p/{personas.project.slug}/queue/", {"filter": "todo"}).content.decode()
    assert 'data-filter="todo"' not in body and 'data-filter="mine"' not in body and "Needs my review" not in body
    assert 'data-sample-id="' in body  # "todo" is not theirs: they get every sample
    client.force_login(personas.reviewer)
    body = client.get(f"/p/{personas.project.slug}/queue/").content.decode()
    assert 'data-filter="todo"' in body and 'data-filter="mine"' in body
