"""The house a newcomer reads: no import circle (deferred imports included), and the method
modules never reach into the full-scale machinery (``rsd_mini.fullscale``)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rsd_mini"
#: The paper itself (STYLE.md): what a reader meets first.
METHOD = ("rsd_mini.diffusion", "rsd_mini.unet", "rsd_mini.distill", "rsd_mini.toy")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """Every rsd_mini module that ``name`` imports anywhere in its body (deferred imports too)."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {m for m in found if m in MODULES and m != name and m != "rsd_mini"}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a list of modules, or ``None`` (depth-first search)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_a_planted_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_package_has_no_import_circle():
    graph = {name: imports_of(name) for name in MODULES}
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


@pytest.mark.parametrize("module", METHOD)
def test_method_modules_do_not_import_the_machinery(module):
    machinery = sorted(m for m in imports_of(module) if m.startswith("rsd_mini.fullscale"))
    assert not machinery, f"{module} imports {machinery}: the method must not depend on full-scale machinery"


def test_official_alias_keeps_the_public_names():
    from rsd_mini import official
    from rsd_mini.fullscale import official as implementation

    for name in ("load_unet", "load_autoencoder", "load_official_model"):
        assert getattr(official, name) is getattr(implementation, name)
