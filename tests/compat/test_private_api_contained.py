"""No module of the pack outside ``flytekitplugins.aios.compat`` touches a private flytekit, flyteidl or
pandera member."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCANNED = ("plugins", "connectors", "tasks", "workflows")
COMPAT = REPO / "plugins" / "flytekit-aios" / "flytekitplugins" / "aios" / "compat"

# the private members the compat modules wrap (tests/compat/test_{flytekit,pandera}_compat.py pin each)
KNOWN_PRIVATE = frozenset(
    {
        "_channel",
        "_python_interface",
        "_literal_map_to_kwargs",
        "_dict_to_literal_map",
        "_parameters",
        "_instantiated_in",
        "_checkpoint_dest",
        "_checkpoint_src",
        "_handle_exception",
        "_get_pandera_schema",
        "_sd_transformer",
        "_VALIDATION_MEMO",
    }
)
LIBRARIES = ("flytekit", "flyteidl", "pandera", "flytekitplugins.pandera")
ATTR_FUNCTIONS = frozenset({"getattr", "setattr", "hasattr", "delattr"})


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _from_library(module: str) -> bool:
    return any(module == lib or module.startswith(lib + ".") for lib in LIBRARIES)


def _library_names(tree: ast.AST) -> set[str]:
    """Names a module binds to a library module or member (``import flytekit as fk``, ``from x import Y``)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update((a.asname or a.name).split(".")[0] for a in node.names if _from_library(a.name))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _from_library(node.module or ""):
            names.update(a.asname or a.name for a in node.names)
    return names


def violations(path: Path, root: Path = REPO) -> list[str]:
    """``file:line: what`` for every private library member ``path`` touches (``file`` relative to ``root``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    library = _library_names(tree)
    rel = path.relative_to(root)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            if node.attr in KNOWN_PRIVATE:
                found.append(f"{rel}:{node.lineno}: .{node.attr}")
            elif isinstance(node.value, ast.Name) and node.value.id in library:
                found.append(f"{rel}:{node.lineno}: {node.value.id}.{node.attr}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ATTR_FUNCTIONS:
            for arg in node.args[1:2]:
                if isinstance(arg, ast.Constant) and arg.value in KNOWN_PRIVATE:
                    found.append(f"{rel}:{node.lineno}: {node.func.id}(..., {arg.value!r})")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _from_library(node.module or ""):
            found += [f"{rel}:{node.lineno}: import {a.name}" for a in node.names if _is_private(a.name)]
    return found


def _pack_files() -> list[Path]:
    files = [p for d in SCANNED for p in sorted((REPO / d).rglob("*.py"))]
    return [p for p in files if COMPAT not in p.parents]


def test_private_members_are_touched_only_in_the_compat_package() -> None:
    files = _pack_files()
    assert len(files) > 50  # the scan sees the pack
    found = [v for p in files for v in violations(p)]
    assert found == [], "use flytekitplugins.aios.compat instead:\n" + "\n".join(found)


def test_the_guard_sees_each_form_of_access(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from flytekit.core.type_engine import TypeEngine\n"
        "import flytekit.extend.backend.connector_service as cs\n"
        "from flytekit.core.base_task import _private_thing\n"
        "def f(remote, cp, t):\n"
        "    remote.client._channel\n"
        "    getattr(cp, '_checkpoint_dest', None)\n"
        "    TypeEngine._some_new_helper\n"
        "    cs._handle_exception = None\n"
        "    t._own_attribute = 1\n"
        "    t.__class__\n"
    )
    found = sorted(v.split(": ", 1)[1] for v in violations(probe, tmp_path))
    assert found == sorted(
        [
            "import _private_thing",
            "._channel",
            "getattr(..., '_checkpoint_dest')",
            "TypeEngine._some_new_helper",
            "._handle_exception",
        ]
    )
