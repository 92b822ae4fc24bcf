"""Export and import a judge: a round trip on the shared datasets loses nothing, a malformed or foreign document
is refused whole with a precise reason, and the page and the commands do the same."""

from __future__ import annotations

import copy
import json
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from memory import distil, portable, semantic, versions
from memory.models import MemoryVersion, Principle, PrincipleSource
from reviews.models import Feedback, Membership, Project, Sample
from tests.conftest import add_feedback, add_sample, make_user, shared_dataset
from tests.datasets import FILES, load_project


def comparable(document: dict) -> dict:
    """The document without what may differ after a round trip: names (the project's and the authors')."""
    out = copy.deepcopy(document)
    out.pop("name")
    for example in out["examples"]:
        example.pop("author")
    return out


@pytest.mark.parametrize("name", FILES)
def test_export_import_export_loses_nothing(name, personas):
    shared_dataset(f"{name}.jsonl")
    project, _ = load_project(name, personas.owner, personas.reviewer, limit=40)
    semantic.regenerate(project, force=True)
    principles = list(versions.active_principles(project))
    assert len(principles) >= 2, "the file distils into principles"
    principles[0].pinned = True
    principles[0].save()
    versions.set_retired(project, principles[1], True, "olivia")
    # Feedback written after the last distillation stays pending on the other side too.
    outputs = {"output_a": "a", "output_b": "b"} if project.is_pairwise else {"outputs": "x"}
    late = add_sample(project, "late", judge_value="", inputs={"q": "late"}, **outputs)
    add_feedback(late, personas.owner, project.label_choices[0], "Late.")

    first = portable.export(project)
    assert {"format", "criterion", "label_schema", "provider", "principles", "examples"} <= set(first)
    assert len(first["examples"]) == 41 and sum(e["distilled"] for e in first["examples"]) == 40
    assert any(p["pinned"] for p in first["principles"]) and any(p["retired"] for p in first["principles"])

    copy_ = portable.import_judge(portable.dumps(first), personas.other_owner)
    second = portable.export(copy_)
    assert comparable(second) == comparable(first)
    assert copy_.slug != project.slug and second["name"] == first["name"]
    authors = {e["author"] for e in second["examples"]}
    assert authors == {"imported-rafael", "imported-olivia"}  # another site's people, kept apart, not logged in
    assert not get_user_model().objects.get(username="imported-rafael").is_active
    assert distil.pending_feedback(copy_).count() == 1  # only the late one is distilled there
    assert MemoryVersion.objects.filter(project=copy_).count() == 1


def test_an_example_by_the_importer_is_theirs_and_two_experts_on_one_sample_survive(personas):
    sample = add_sample(personas.project, "s1")
    add_feedback(sample, personas.reviewer, "fail", "Curt.")
    add_feedback(sample, personas.owner, "pass", "Fine by me.")
    document = portable.export(personas.project)
    copy_ = portable.import_judge(json.dumps(document), personas.owner, name="Copy")
    assert copy_.name == "Copy" and Sample.objects.filter(project=copy_).count() == 1
    by = dict(Feedback.objects.filter(project=copy_).values_list("author__username", "label"))
    assert by == {"olivia": "pass", "imported-rafael": "fail"}
    roles = dict(Membership.objects.filter(project=copy_).values_list("user__username", "role"))
    assert roles == {"olivia": "owner", "imported-rafael": "reviewer"}
    version = MemoryVersion.objects.get(project=copy_)  # the import is the new project's first version, by its owner
    assert (version.number, version.trigger, version.actor) == (1, MemoryVersion.Trigger.IMPORT, personas.owner)


def valid_document(personas) -> dict:
    sample = add_sample(personas.project, "v1")
    feedback = add_feedback(sample, personas.reviewer, "fail", "Curt.")
    principle = Principle.objects.create(project=personas.project, text="Curt replies fail.", label="fail")
    PrincipleSource.objects.create(principle=principle, feedback=feedback, feedback_revision=1)
    return portable.export(personas.project)


def broken(document: dict, change) -> str:
    document = copy.deepcopy(document)
    change(document)
    return json.dumps(document)


MALFORMED = [
    ("not json", lambda d: None, "{nope", "The file is not JSON"),
    ("a list", lambda d: None, "[1, 2]", "JSON object; this file holds a JSON list"),
    ("foreign", lambda d: d.pop("format"), None, "no 'format' key"),
    (
        "another format",
        lambda d: d.update(format="memalign-judge/9"),
        None,
        "'memalign-judge/9' is not one this site reads",
    ),
    ("unknown key", lambda d: d.update(extra=1), None, "extra: Extra inputs are not permitted"),
    ("no criterion", lambda d: d.pop("criterion"), None, "criterion: Field required"),
    ("bad kind", lambda d: d["label_schema"].update(kind="stars"), None, "label_schema.kind"),
    (
        "one category",
        lambda d: d["label_schema"].update(kind="categorical", categories=["x"]),
        None,
        "at least two categories",
    ),
    (
        "label outside",
        lambda d: d["examples"][0].update(label="maybe"),
        None,
        "examples[0].label: 'maybe' is not a label",
    ),
    ("string k", lambda d: d["provider"].update(retrieval_k="5"), None, "provider.retrieval_k"),
    (
        "bad source",
        lambda d: d["principles"][0].update(sources=[7]),
        None,
        "principles[0].sources: 7 is not an example index (0 to 0)",
    ),
    ("bad principle label", lambda d: d["principles"][0].update(label="meh"), None, "principles[0].label: 'meh'"),
    ("bad url", lambda d: d["provider"].update(base_url="not a url"), None, "provider_base_url: Enter a valid URL"),
    (
        "twice by one author",
        lambda d: d["examples"].append(dict(d["examples"][0], label="pass")),
        None,
        "examples[1]: a second example by 'rafael' on sample 'v1'",
    ),
    (
        "one sample, two contents",
        lambda d: d["examples"].append(dict(d["examples"][0], author="x", outputs="other")),
        None,
        "examples[1]: sample 'v1' differs from the one in examples[0]",
    ),
    ("pairwise without outputs", lambda d: d["label_schema"].update(kind="pairwise"), None, "output_a and output_b"),
]


@pytest.mark.parametrize("case", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_a_malformed_document_is_refused_whole_with_the_reason(personas, case):
    _, change, raw, reason = case
    document = valid_document(personas)
    counts = [m.objects.count() for m in (Project, Sample, Feedback, Principle, MemoryVersion, get_user_model())]
    with pytest.raises(portable.Refused) as refused:
        portable.import_judge(raw if raw is not None else broken(document, change), personas.owner)
    assert reason in str(refused.value)
    assert [
        m.objects.count() for m in (Project, Sample, Feedback, Principle, MemoryVersion, get_user_model())
    ] == counts


def test_the_pages_and_the_commands(client, personas, tmp_path):
    valid_document(personas)
    client.force_login(personas.owner)
    response = client.get(f"/p/{personas.project.slug}/memory/export.json")
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    exported = json.loads(response.content)
    assert exported == portable.export(personas.project)

    from django.core.files.uploadedfile import SimpleUploadedFile

    make_user("newcomer")
    client.force_login(get_user_model().objects.get(username="newcomer"))
    bad = SimpleUploadedFile("j.json", b'{"format": "x"}', content_type="application/json")
    response = client.post("/judges/import/", {"file": bad})
    assert (
        response.status_code == 400
        and "Nothing was imported. Format &#x27;x&#x27; is not one" in response.content.decode()
    )
    good = SimpleUploadedFile("j.json", json.dumps(exported).encode(), content_type="application/json")
    response = client.post("/judges/import/", {"file": good, "name": "Moved"})
    copy_ = Project.objects.get(name="Moved")
    assert response.status_code == 302 and response["Location"] == f"/p/{copy_.slug}/memory/"
    assert Membership.objects.get(project=copy_, role="owner").user.username == "newcomer"

    path = tmp_path / "judge.json"
    call_command("export_judge", personas.project.slug, str(path), stderr=StringIO())
    assert json.loads(path.read_text()) == exported
    out = StringIO()
    call_command("import_judge", str(path), "--owner", "olivia", "--name", "By command", stdout=out)
    assert "Created project" in out.getvalue()
    assert comparable(portable.export(Project.objects.get(name="By command"))) == comparable(exported)
    path.write_text('{"format": "memalign-judge/1"}')
    with pytest.raises(CommandError, match="Nothing was imported.*criterion: Field required"):
        call_command("import_judge", str(path), "--owner", "olivia")
    with pytest.raises(CommandError, match="--owner"):
        call_command("import_judge", str(path))
