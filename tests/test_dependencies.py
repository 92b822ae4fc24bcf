"""The dependency rule, in Python and in templates: one way down.

    agreement  <-  reviews  <-  memory  <-  judging  <-  evaluation  <-  api  <-  memalign_site

A package imports only packages at its own layer or below (deferred imports inside functions included); an app's
templates load only template tags, name only URLs and include only templates of apps at its layer or below; no
module-level import circle; no module hides a dependency by importing a task module inside a function.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["agreement", "reviews", "memory", "judging", "evaluation", "api", "memalign_site"]
RANK = {name: i for i, name in enumerate(LAYERS)}
SHARED_LAYOUT = {"base.html", "403.html", "404.html"}  # the site's page shell, which every page extends


def python_files(package: str) -> list[Path]:
    return [p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts]


def imports(path: Path) -> list[tuple[str, bool]]:
    """Return (module, deferred) for each project import in a file: deferred when made inside a function."""
    tree = ast.parse(path.read_text(), str(path))
    deferred_nodes = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for inner in ast.walk(node)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in deferred_nodes) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(f"{node.module}.{alias.name}", id(node) in deferred_nodes) for alias in node.names]
    return [(name, deferred) for name, deferred in found if name.split(".")[0] in RANK]


@pytest.mark.parametrize("package", LAYERS)
def test_a_package_imports_nothing_above_it(package):
    upward = {
        str(path.relative_to(ROOT)): sorted({m for m, _ in imports(path) if RANK[m.split(".")[0]] > RANK[package]})
        for path in python_files(package)
    }
    assert {path: names for path, names in upward.items() if names} == {}


def test_the_statistics_need_no_django():
    used = {m for path in python_files("agreement") for m, _ in imports(path)}
    assert used <= {m for m in used if m.startswith("agreement")}
    assert all("django" not in path.read_text() for path in python_files("agreement"))


def test_no_module_imports_a_task_module_inside_a_function():
    hidden = {
        str(path.relative_to(ROOT)): sorted(m for m, deferred in imports(path) if deferred and ".tasks" in m)
        for package in LAYERS
        for path in python_files(package)
    }
    assert {path: names for path, names in hidden.items() if names} == {}


def test_domain_modules_do_not_import_tasks():
    """Only the top layers of an app (its tasks, views, wiring) reach its tasks; domain modules queue work
    through a dispatch module or a signal."""
    top = {"tasks.py", "views.py", "apps.py", "urls.py", "celery.py"}
    reaching = {
        str(path.relative_to(ROOT)): sorted(m for m, _ in imports(path) if ".tasks" in m)
        for package in ("reviews", "memory", "judging", "evaluation")
        for path in python_files(package)
        if path.name not in top and not path.name.endswith("_views.py") and "management" not in path.parts
    }
    assert {path: names for path, names in reaching.items() if names} == {}


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def test_no_import_circle_between_modules():
    modules = {module_name(p): p for package in LAYERS for p in python_files(package)}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imported, deferred in imports(path):
            if deferred:
                continue
            # `from memory import episodic` names a module; `from memory.models import X` names a module's member
            targets |= {candidate for candidate in (imported, imported.rsplit(".", 1)[0]) if candidate in modules}
        graph[name] = targets - {name}
    circles = []
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append(trail[trail.index(nxt) :] + [nxt] if nxt in trail else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert circles == []


# --- templates ---------------------------------------------------------------------------------------------

URL_NAME = re.compile(r"""name=["']([\w-]+)["']""")
URL_TAG = re.compile(r"""\{%\s*url\s+["']([\w-]+)["']""")
LOAD_TAG = re.compile(r"\{%\s*load\s+([^%]+?)\s*%\}")
TEMPLATE_REF = re.compile(r"""\{%\s*(?:include|extends)\s+["']([^"']+)["']""")
BUILTIN_LIBRARIES = {"static", "i18n", "l10n", "tz", "cache", "humanize", "partials", "django_htmx", "csp"}


def url_owners() -> dict[str, str]:
    owners = {}
    for package in LAYERS:
        for path in (ROOT / package).rglob("urls.py"):
            owners |= {name: package for name in URL_NAME.findall(path.read_text())}
    owners |= {"health": "memalign_site"}
    owners |= {"login": "agreement", "logout": "agreement"}  # Django's own auth pages: any page may link them
    return owners


def library_owners() -> dict[str, str]:
    return {path.stem: package for package in LAYERS for path in (ROOT / package).glob("templatetags/*.py")}


def template_app(path: Path) -> str:
    relative = path.relative_to(ROOT / "templates")
    return relative.parts[0] if len(relative.parts) > 1 and relative.parts[0] in RANK else "memalign_site"


def test_templates_reference_nothing_above_their_app():
    urls, libraries = url_owners(), library_owners()
    upward = {}
    for path in (ROOT / "templates").rglob("*.html"):
        app, text = template_app(path), path.read_text()
        owners = [(f"url {n}", urls.get(n, "?")) for n in URL_TAG.findall(text)]
        owners += [
            (f"load {lib}", libraries.get(lib, "?"))
            for group in LOAD_TAG.findall(text)
            for lib in group.split()
            if lib not in BUILTIN_LIBRARIES
        ]
        owners += [
            (f"template {ref}", ref.split("/")[0] if "/" in ref else "memalign_site")
            for ref in TEMPLATE_REF.findall(text)
            if ref not in SHARED_LAYOUT
        ]
        bad = [what for what, owner in owners if owner == "?" or RANK.get(owner, 99) > RANK[app]]
        if bad:
            upward[str(path.relative_to(ROOT))] = bad
    assert upward == {}


def test_the_template_check_sees_upward_references(tmp_path):
    assert URL_TAG.findall("{% url 'judge-run' project.slug r.pk %}") == ["judge-run"]
    assert LOAD_TAG.findall("{% load partials review_tags %}") == ["partials review_tags"]
    assert TEMPLATE_REF.findall('{% include "judging/_figure.html" with who="x" %}') == ["judging/_figure.html"]
    assert url_owners()["judge-run"] == "judging" and url_owners()["sample-review"] == "reviews"


def test_the_check_sees_deferred_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "from reviews import models\n\ndef f():\n    from memalign_site.celery import app\n    import memory.tasks\n"
    )
    assert imports(module) == [("reviews.models", False), ("memalign_site.celery.app", True), ("memory.tasks", True)]
