"""Who may import whom: the rules know no HTTP, the two faces never import each other, config stays config.

Read from the source (every import statement of every module), and, for
what a module pulls in indirectly, from a fresh interpreter's sys.modules.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

PACKAGE = ROOT / "uptimed"


def imports_of(path: Path) -> set[str]:
    """The modules ``path`` imports, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base]) if base else ".".join(parts)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def offenders(folder: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    """Per module of ``uptimed/<folder>``, what it imports of ``forbidden``."""
    out: dict[str, list[str]] = {}
    for path in sorted((PACKAGE / folder).rglob("*.py")):
        bad = sorted(m for m in imports_of(path) if within(m, forbidden))
        if bad:
            out[path.relative_to(ROOT).as_posix()] = bad
    return out


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("rules", ("fastapi", "starlette", "uvicorn", "uptimed.api", "uptimed.web", "uptimed.app")),
        ("api", ("uptimed.web", "uptimed.app")),
        ("web", ("uptimed.api", "uptimed.app")),
        ("store", ("fastapi", "starlette", "uptimed.api", "uptimed.web", "uptimed.rules")),
    ],
)
def test_a_layer_imports_only_what_it_may(folder: str, forbidden: tuple[str, ...]) -> None:
    assert offenders(folder, forbidden) == {}


def loaded_by(module: str) -> list[str]:
    """Every module a fresh interpreter has loaded after importing ``module``."""
    code = f"import sys, json, {module}; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(result.stdout)


def test_config_loads_no_channel_store_or_http_code() -> None:
    unwanted = ("uptimed.channels", "uptimed.store", "uptimed.api", "uptimed.web", "fastapi", "starlette", "asyncpg")
    assert [m for m in loaded_by("uptimed.config") if within(m, unwanted)] == []


def test_the_quorum_rule_loads_nothing_the_state_machine_could_not() -> None:
    unwanted = ("uptimed.store", "uptimed.api", "uptimed.web", "uptimed.channels", "fastapi", "starlette", "asyncpg")
    assert [m for m in loaded_by("uptimed.rules.regions") if within(m, unwanted)] == []


@pytest.mark.parametrize("module", ["uptimed.monitor", "uptimed.check", "uptimed.event"])
def test_the_domain_types_load_no_bus_store_or_http_code(module: str) -> None:
    unwanted = ("uptimed.bus", "aiokafka", "uptimed.store", "asyncpg", "redis", "uptimed.api", "uptimed.web", "fastapi")
    assert [m for m in loaded_by(module) if within(m, unwanted)] == []
