"""Try the judge: boxes shaped like the project's samples, examples with their outputs, tokens used, and a
request that is rate-limited, refused fast when the provider is busy, and short on provider patience."""

import re
import threading

import pytest

from judging import tries
from memory import episodic, limiter
from memory.models import Principle
from memory.redis_client import get_redis
from reviews.models import Feedback
from tests.conftest import add_feedback, add_sample


@pytest.fixture
def url(personas):
    get_redis().delete(
        *[
            f"{tries.settings.MEMALIGN_NAMESPACE}:tries:{personas.project.pk}:{u.pk}"
            for u in (personas.viewer, personas.owner)
        ]
    )
    return f"/p/{personas.project.slug}/memory/try/"


def reviewed(personas):
    sample = add_sample(
        personas.project, "t1", inputs={"customer_message": "Where is my refund?"}, outputs="We value <your> feedback."
    )
    add_feedback(sample, personas.reviewer, "fail", "Ignores the refund.")
    episodic.upsert(list(Feedback.objects.filter(project=personas.project).select_related("sample")))


@pytest.mark.django_db
def test_the_boxes_follow_the_samples_inputs(client, personas):
    client.force_login(personas.viewer)

    def page():
        return client.get(f"/p/{personas.project.slug}/memory/runs/").content.decode()

    assert 'name="inputs"' in page() and 'name="output"' in page()  # no samples yet: free text
    add_sample(personas.project, "s", inputs={"customer_message": "Hi", "order": "42"})
    body = page()
    assert 'name="input__customer_message"' in body and 'name="input__order"' in body and 'name="inputs"' not in body
    personas.other.label_kind = "pairwise"
    personas.other.save()
    client.force_login(personas.other_owner)
    body = client.get(f"/p/{personas.other.slug}/memory/runs/").content.decode()
    assert 'name="output_a"' in body and 'name="output_b"' in body and 'name="output"' not in body


@pytest.mark.django_db
def test_a_try_shows_examples_with_their_outputs_and_that_no_tokens_were_used(client, personas, url):
    reviewed(personas)
    client.force_login(personas.viewer)
    response = client.post(
        url, {"input__customer_message": "Where is my refund?", "output": "We value <your> feedback."}
    )
    body = response.content.decode()
    assert response.status_code == 200 and 'data-verdict="fail"' in body
    assert "We value &lt;your&gt; feedback." in body  # the example's output, escaped
    assert "data-same-item" in body  # the very item, reviewed before
    assert "No LLM call: no tokens used." in body
    assert client.post(url, {"input__customer_message": "Where is my refund?"}).status_code == 422  # output missing


@pytest.mark.django_db
def test_a_box_of_only_spaces_is_refused_with_a_status_htmx_swaps_into_the_result_area(client, personas, url):
    # htmx swaps 422 (base.html's responseHandling); in DEBUG, django-htmx's handler puts a 400 in place of the page.
    client.force_login(personas.viewer)
    response = client.post(url, {"inputs": "   ", "output": "Fine."}, headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert '<p class="error">Fill in every box' in response.content.decode()


@pytest.mark.django_db
def test_a_reviewer_is_not_offered_a_box_that_would_refuse_them(client, personas):
    client.force_login(personas.reviewer)
    body = client.get(f"/p/{personas.project.slug}/memory/runs/").content.decode()
    assert 'id="try-blind"' in body and "/memory/try/" not in body
    client.force_login(personas.viewer)
    body = client.get(f"/p/{personas.project.slug}/memory/runs/").content.decode()
    assert 'id="try-blind"' not in body and 'hx-post="/p/support-tone/memory/try/"' in body


@pytest.mark.django_db
def test_a_try_lists_the_principles_its_heading_counts(client, personas, url):
    reviewed(personas)
    Principle.objects.create(project=personas.project, text="Answer the <b>refund</b> question.", label="fail")
    Principle.objects.create(project=personas.project, text="Be kind.")
    client.force_login(personas.viewer)
    body = client.post(url, {"input__customer_message": "Refund?", "output": "No."}).content.decode()
    assert "2 principles and 1 retrieved example" in body
    listed = re.findall(r'<li data-principle-id="\d+">(.*?)</li>', body)
    assert listed == ["Answer the &lt;b&gt;refund&lt;/b&gt; question.", "Be kind."]


@pytest.mark.django_db
def test_tokens_used_are_shown(client, personas, url, fake_anthropic):
    reviewed(personas)
    personas.project.provider = "anthropic"
    personas.project.save()
    client.force_login(personas.viewer)
    body = client.post(url, {"input__customer_message": "Refund?", "output": "No."}).content.decode()
    usage = re.search(r"data-usage>(\d+) input tokens, (\d+) output, (\d+) read from the cache", body)
    assert usage and int(usage.group(1)) + int(usage.group(3)) > 0 and int(usage.group(2)) > 0


@pytest.mark.django_db
def test_tries_are_rate_limited_per_person(client, personas, url):
    reviewed(personas)
    client.force_login(personas.viewer)
    data = {"input__customer_message": "Refund?", "output": "No."}
    statuses = [client.post(url, data).status_code for _ in range(tries.PER_MINUTE + 1)]
    assert statuses == [200] * tries.PER_MINUTE + [429]
    client.force_login(personas.owner)
    assert client.post(url, data).status_code == 200  # another person is not held back


@pytest.mark.django_db
def test_a_busy_provider_is_refused_fast_and_a_slow_one_times_out(client, personas, url, fake_anthropic, monkeypatch):
    reviewed(personas)
    personas.project.provider, personas.project.provider_concurrency = "anthropic", 1
    personas.project.save()
    monkeypatch.setattr(tries, "SLOT_WAIT_SECONDS", 0.3)
    monkeypatch.setattr(tries, "PROVIDER_TIMEOUT_SECONDS", 0.5)
    client.force_login(personas.viewer)
    data = {"input__customer_message": "Refund?", "output": "No."}
    held, release = threading.Event(), threading.Event()

    def run_holding_the_slot():
        with limiter.provider_slot(personas.project.pk, 1):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=run_holding_the_slot)
    holder.start()
    held.wait(5)
    try:
        assert "all in use" in client.post(url, data).content.decode()
    finally:
        release.set()
        holder.join(5)
    fake_anthropic.latency = 1.0
    body = client.post(url, data).content.decode()
    assert "timed out (2 attempts, 0.5s each)" in body  # one retry, half a second each: never minutes
