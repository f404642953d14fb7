"""The layers stay layers: the core (rooms/) knows no transport, no database, no backend and no metrics
library (it counts through its Metrics port; ops/ exports), and a backend (backends/) knows the core
only by its ports, never the hub or the presence rules.

Read from the source (every import statement, also those under ``if TYPE_CHECKING:`` or inside a
function, and ``importlib.import_module("...")``), not from what happens to be loaded at run time.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

ROOMS_MUST_NOT_IMPORT = ("tornado", "sqlite3", "redis", "backends", "handlers", "ops", "prometheus_client")
BACKENDS_MUST_NOT_IMPORT = ("rooms.hub", "rooms.members", "handlers", "ops", "prometheus_client")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(path: Path) -> str:
    name = module_name(path)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


@functools.cache
def reexports(package: str) -> dict[str, str]:
    """Names a package's ``__init__`` takes from its modules: ``{"Hub": "rooms.hub", ...}``."""
    init = ROOT / package.replace(".", "/") / "__init__.py"
    found: dict[str, str] = {}
    for node, module in _from_imports(init):
        for alias in node.names:
            found[alias.asname or alias.name] = module
    return found


@functools.cache
def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


def _from_imports(path: Path):
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_of(path).split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield node, module


def _called(call: ast.Call) -> str | None:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None


def imports(path: Path) -> set[tuple[str, int]]:
    """Every module ``path`` imports, with the line: ``from rooms import Hub`` is ``rooms.hub``
    (what ``rooms/__init__`` takes it from), ``from . import validation`` is ``rooms.validation``."""
    found: set[tuple[str, int]] = set()
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.Import):
            found.update((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.Call) and _called(node) in ("import_module", "__import__") and node.args \
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            found.add((node.args[0].value, node.lineno))
    for node, module in _from_imports(path):
        found.add((module, node.lineno))
        local = ROOT / module.replace(".", "/")
        names = reexports(module) if (local / "__init__.py").exists() else {}
        for alias in node.names:
            if (local / f"{alias.name}.py").exists() or (local / alias.name / "__init__.py").exists():
                found.add((f"{module}.{alias.name}" if module else alias.name, node.lineno))  # a submodule
            elif alias.name in names:
                found.add((names[alias.name], node.lineno))  # re-exported from a submodule
    return found


def offences(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    out = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for module, line in sorted(imports(path)):
            if any(module == f or module.startswith(f + ".") for f in forbidden):
                out.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return out


def test_the_walk_sees_imports_of_every_kind():
    """Without this, a walk that found nothing would pass every rule below."""
    assert any(m == "rooms.members" for m, _ in imports(ROOT / "rooms" / "hub.py"))
    assert any(m == "rooms.hub" for m, _ in imports(ROOT / "rooms" / "members.py"))  # under TYPE_CHECKING
    assert any(m == "redis" or m.startswith("redis.") for m, _ in imports(ROOT / "backends" / "redis" / "link.py"))
    assert any(m == "rooms.ports" for m, _ in imports(ROOT / "backends" / "memory.py"))
    assert any(m == "rooms.hub" for m, _ in imports(ROOT / "chat.py"))  # `from rooms import Hub`
    assert any(m == "rooms.models" for m, _ in imports(ROOT / "rooms" / "hub.py"))  # relative, `from .models`


def test_the_core_imports_no_transport_database_or_backend():
    assert list((ROOT / "rooms").glob("*.py")), "rooms/ not found"
    assert offences("rooms", ROOMS_MUST_NOT_IMPORT) == []


def test_backends_know_the_core_only_by_its_ports():
    assert list((ROOT / "backends").rglob("*.py")), "backends/ not found"
    assert offences("backends", BACKENDS_MUST_NOT_IMPORT) == []
