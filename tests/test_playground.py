"""The playground: a pasted or picked item's retrieved examples with similarities, the principles included, and
the request the judge is sent, shown exactly as the Anthropic provider sends it (checked against the fake
Messages API's recording)."""

from __future__ import annotations

import html
import json
import re

import pytest

from judging import tries
from memory import episodic
from memory.models import Principle
from memory.redis_client import get_redis
from reviews.models import Feedback
from tests.conftest import add_feedback, add_sample


@pytest.fixture
def reviewed(personas):
    get_redis().delete(
        *[f"{tries.settings.MEMALIGN_NAMESPACE}:tries:{personas.project.pk}:{u.pk}" for u in (personas.viewer,)]
    )
    refund = add_sample(
        personas.project, "t1", inputs={"customer_message": "Where is my refund?"}, outputs="We value <your> feedback."
    )
    ship = add_sample(personas.project, "t2", inputs={"customer_message": "Do you ship abroad?"}, outputs="Yes.")
    add_feedback(refund, personas.reviewer, "fail", "Ignores the refund.")
    add_feedback(ship, personas.reviewer, "pass", "Short and right.")
    episodic.upsert(list(Feedback.objects.filter(project=personas.project).select_related("sample")))
    Principle.objects.create(project=personas.project, text="Answer the <question> asked.", label="fail")
    return {"refund": refund, "ship": ship}


def url(personas):
    return f"/p/{personas.project.slug}/memory/playground/"


def shown(body: str, element: str) -> str:
    return html.unescape(re.search(rf'id="{element}">(.*?)</div>', body, re.S).group(1))


def test_the_request_shown_is_the_request_sent(client, personas, reviewed, fake_anthropic):
    personas.project.provider = "anthropic"
    personas.project.save()
    client.force_login(personas.viewer)
    item = {"input__customer_message": "Where is my refund, please?", "output": "We value your feedback."}
    body = client.post(url(personas), {**item, "action": "show"}).content.decode()
    assert fake_anthropic.request_count == 0  # showing sends nothing
    request = json.loads(shown(body, "prompt-request"))
    assert request["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert "Answer the &lt;question&gt; asked." in request["system"][0]["text"]  # escaped for the model too
    similarities = [float(s) for s in re.findall(r"data-similarity>([\d.]+)<", body)]
    assert len(similarities) == 2 and similarities == sorted(similarities, reverse=True)
    assert body.index(f'data-feedback-id="{reviewed["refund"].feedback.get().pk}"') < body.index(
        f'data-feedback-id="{reviewed["ship"].feedback.get().pk}"'
    )  # the refund example is the more similar
    tokens = int(re.search(r'data-tokens="(\d+)"', body).group(1))
    assert (
        tokens
        == (len(shown(body, "prompt-system")) + len(shown(body, "prompt-user")) + len(shown(body, "prompt-tools"))) // 4
        + 1
    )

    body = client.post(url(personas), {**item, "action": "judge"}).content.decode()
    assert fake_anthropic.request_count == 1 and "data-verdict=" in body and "data-usage" in body
    sent = fake_anthropic.requests[0].body
    assert sent == json.loads(shown(body, "prompt-request"))


def test_a_picked_sample_fills_the_boxes_and_leaves_out_its_own_feedback(client, personas, reviewed):
    client.force_login(personas.owner)
    body = client.get(url(personas), {"sample": reviewed["refund"].pk}).content.decode()
    assert "Where is my refund?</textarea>" in body and "We value &lt;your&gt; feedback.</textarea>" in body
    assert f'data-sample-id="{reviewed["refund"].pk}"' in body
    data = {
        "sample": reviewed["refund"].pk,
        "input__customer_message": "Where is my refund?",
        "output": "We value <your> feedback.",
        "action": "judge",
    }
    body = client.post(url(personas), data).content.decode()
    own = reviewed["refund"].feedback.get().pk
    assert f'data-feedback-id="{own}"' not in body and "data-same-item" not in body  # as when judging the sample
    assert f'data-feedback-id="{reviewed["ship"].feedback.get().pk}"' in body
    assert "No LLM call: no tokens used." in body  # the offline provider
    body = client.post(url(personas), {**data, "sample": ""}).content.decode()
    assert f'data-feedback-id="{own}"' in body and "data-same-item" in body  # pasted: the reviewed item decides


def test_bad_input_and_blind_reviewers(client, personas, reviewed):
    client.force_login(personas.owner)
    assert client.post(url(personas), {"input__customer_message": "Hi"}).status_code == 400
    other = add_sample(personas.other, "x")
    assert client.get(url(personas), {"sample": other.pk}).status_code == 404
    assert (
        client.post(url(personas), {"sample": other.pk, "input__customer_message": "a", "output": "b"}).status_code
        == 404
    )
    client.force_login(personas.reviewer)
    assert client.get(url(personas)).status_code == 403


def test_a_pairwise_sample_fills_both_outputs(client, personas):
    personas.other.label_kind = "pairwise"
    personas.other.save()
    sample = add_sample(
        personas.other, "p1", judge_value="A", inputs="Write a haiku.", output_a="Leaves", output_b="Snow"
    )
    client.force_login(personas.other_owner)
    page = f"/p/{personas.other.slug}/memory/playground/"
    body = client.get(page, {"sample": sample.pk}).content.decode()
    assert "Write a haiku.</textarea>" in body and "Leaves</textarea>" in body and "Snow</textarea>" in body
    data = {"sample": sample.pk, "inputs": "Write a haiku.", "output_a": "Leaves", "output_b": "Snow", "action": "show"}
    body = client.post(page, data).content.decode()
    assert "Output A:\nLeaves\n\nOutput B:\nSnow" in html.unescape(shown(body, "prompt-user"))
