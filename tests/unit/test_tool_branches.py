"""No code outside a tool's own package decides by a tool's name: a tool-name literal ("k6", "jmeter", "locust",
"gatling", or any registered tool's) used as a branch (compared, tested with `in`, used as a key to look up,
matched with startswith/endswith) is allowed only in that tool's own modules, where adding a tool never has to
touch it. Read from the source's syntax tree, so a name inside a longer string (SQL, a message) is not a branch."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("orchestrator", "warehouse", "dashboard")
TOOL_NAMES = frozenset({"k6", "jmeter", "locust", "gatling"})


def own_package(path: Path) -> str | None:
    """The tool whose own module or package `path` is, or None (orchestrator/tools/<tool>.py,
    orchestrator/generators/<tool>.py, warehouse/tools/<tool>/…)."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[:2] in (("orchestrator", "tools"), ("orchestrator", "generators")) and len(parts) == 3:
        return parts[2]
    if parts[:2] == ("warehouse", "tools") and len(parts) >= 4:
        return parts[2]
    return None


def _names(node: ast.AST) -> list[str]:
    """The tool-name literals `node` is, or holds as a tuple, list or set of literals."""
    if isinstance(node, ast.Constant) and node.value in TOOL_NAMES:
        return [node.value]
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return [n for e in node.elts for n in _names(e)]
    return []


def branches(tree: ast.AST) -> list[tuple[int, str, str]]:
    """(line, how, name) of every tool-name literal used as a branch in `tree`."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for operand in (node.left, *node.comparators):
                found += [(node.lineno, "compared", name) for name in _names(operand)]
        elif isinstance(node, ast.Subscript):
            found += [(node.lineno, "looked up", name) for name in _names(node.slice)]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args and \
                node.func.attr in ("startswith", "endswith", "get", "pop", "setdefault", "removeprefix"):
            found += [(node.lineno, f".{node.func.attr}()", name) for name in _names(node.args[0])]
        elif isinstance(node, ast.match_case):
            found += [(node.pattern.lineno, "matched", name) for name in _names(getattr(node.pattern, "value", node))]
    return found


def sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_no_tool_name_is_a_branch_outside_its_own_package() -> None:
    found = []
    for path in sources():
        owner = own_package(path)
        for line, how, name in branches(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if name != owner:
                found.append(f"{path.relative_to(ROOT)}:{line}: {name!r} {how}")
    assert not found, "tool names used as branches outside their own package:\n" + "\n".join(found)


@pytest.mark.parametrize("code", [
    'if run.tool == "k6": pass',
    'x = "jmeter" in chosen',
    'tool = TOOLS["jmeter"]',
    'ok = name.startswith("k6")',
    'key = sorted(rows, key=lambda r: (r["tool"] != "k6", r["tool"]))',
    'x = tool in ("locust", "gatling")',
    'f = FOLDINGS.get("locust")',
])
def test_the_check_sees_each_kind_of_branch(code: str) -> None:
    assert branches(ast.parse(code))


@pytest.mark.parametrize("code", [
    'label = "k6"',
    'sql = "SELECT 1 WHERE tool = \'jmeter\'"',
    'run(tool="k6")',
    'names = {"k6": 1}',
])
def test_a_name_that_is_no_branch_passes(code: str) -> None:
    assert not branches(ast.parse(code))


def test_own_packages_are_the_tools_modules() -> None:
    assert own_package(ROOT / "orchestrator/tools/k6.py") == "k6"
    assert own_package(ROOT / "orchestrator/generators/jmeter.py") == "jmeter"
    assert own_package(ROOT / "warehouse/tools/locust/folding.py") == "locust"
    assert own_package(ROOT / "warehouse/tools/__init__.py") is None
    assert own_package(ROOT / "warehouse/report/reports.py") is None
