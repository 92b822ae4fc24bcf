"""The dependency rule: the site wires the apps, apps never import the site, and reviews never imports memory."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"memory": {"memalign_site"}, "reviews": {"memalign_site", "memory"}, "api": {"memalign_site"}}


def imported_packages(path: Path) -> set[str]:
    """Return the top-level packages a module imports, at module level or inside functions (deferred imports)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("app", sorted(FORBIDDEN))
def test_app_does_not_import_what_depends_on_it(app):
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path) & FORBIDDEN[app])
        for path in (ROOT / app).rglob("*.py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_check_sees_deferred_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from memalign_site.celery import app\n    import memory.tasks\n")
    assert imported_packages(module) == {"memalign_site", "memory"}
