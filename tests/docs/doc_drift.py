"""Check a doc's command lines against the code without running them (cheap; covers marked blocks too).

* ``aios ...``: the command path exists and every option is one of its options (arguments counted).
* ``pyflyte run FILE WF --x ...``: FILE exists, WF is a workflow or task defined in it, every ``--x`` is one
  of its inputs and every input without a default is given.
* ``python -m MOD``, ``bash scripts/x.sh``, ``python file.py``: the module or file exists.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import shlex
from pathlib import Path

import click

from tests.docs.doc_blocks import REPO

_ENV = re.compile(r"^[A-Z_][A-Z0-9_]*=")
_OPS = {"&&", "||", ";", "|"}
_PLACEHOLDER = re.compile(r"<[^<>|]+>")  # <id>, <document digest>: one word the reader fills in


def _argv_list(line: str) -> list[list[str]]:
    """Simple commands of ``line`` (split at ``&&``, ``;``, ``|``), leading VAR=value and venv prefixes removed."""
    try:
        tokens = shlex.split(_PLACEHOLDER.sub("PLACEHOLDER", line), comments=True)
    except ValueError as e:
        return [[f"<unparsable: {e}>"]]
    out: list[list[str]] = [[]]
    for t in tokens:
        if t in _OPS:
            out.append([])
        elif out[-1] or not _ENV.match(t):
            out[-1].append(t)
    for argv in out:
        if argv:
            argv[0] = re.sub(r"^(\./)?\.venv[\w-]*/bin/", "", argv[0])
    return [a for a in out if a]


def check_line(line: str) -> list[str]:
    """Problems of one command line (empty when it matches the code)."""
    problems: list[str] = []
    for argv in _argv_list(line):
        head = argv[0]
        if head.startswith("<unparsable"):
            problems.append(head)
        elif head == "aios":
            problems += _check_aios(argv[1:])
        elif head == "pyflyte" and "run" in argv[1:3]:
            problems += _check_pyflyte_run(argv[argv.index("run") + 1 :])
        elif head in ("python", "python3") and argv[1:2] == ["-m"]:
            if importlib.util.find_spec(argv[2]) is None:
                problems.append(f"python -m {argv[2]}: no such module")
        elif head in ("bash", "python", "python3", "sh") and len(argv) > 1 and not argv[1].startswith("-"):
            if not (REPO / argv[1]).exists():
                problems.append(f"{head} {argv[1]}: no such file in the repository")
    return problems


def _check_aios(args: list[str]) -> list[str]:
    from flytekitplugins.aios_core.cli import cli

    cmd: click.Command = cli
    path = ["aios"]
    while True:
        args = _check_options(cmd, args, path, stop_at_positional=isinstance(cmd, click.Group))
        if isinstance(args, str):
            return [args]
        if not isinstance(cmd, click.Group):
            return _check_positionals(cmd, args, path)
        if not args:
            return []
        sub = cmd.get_command(click.Context(cmd), args[0])
        if sub is None:
            return [
                f"{' '.join(path)}: no command {args[0]!r} (has {', '.join(cmd.list_commands(click.Context(cmd)))})"
            ]
        cmd, path, args = sub, [*path, args[0]], args[1:]


def _check_options(cmd: click.Command, args: list[str], path: list[str], stop_at_positional: bool) -> list[str] | str:
    """The positional args of ``args`` after checking every option; a string names the first bad option."""
    opts = {o: p for p in cmd.params if isinstance(p, click.Option) for o in (*p.opts, *p.secondary_opts)}
    opts.update({o: None for o in ("--help", "-h")})  # type: ignore[misc]
    rest: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("-") and len(a) > 1:
            name = a.split("=", 1)[0]
            if name not in opts:
                known = ", ".join(sorted(o for o in opts if o.startswith("--")))
                return f"{' '.join(path)}: no option {name} (has {known})"
            p = opts[name]
            takes_value = p is not None and not p.is_flag and not p.count and "=" not in a
            i += 2 if takes_value else 1
            continue
        if stop_at_positional:
            return args[i:]
        rest.append(a)
        i += 1
    return rest


def _check_positionals(cmd: click.Command, args: list[str], path: list[str]) -> list[str]:
    wanted = [p for p in cmd.params if isinstance(p, click.Argument)]
    if any(p.nargs == -1 for p in wanted):
        return []
    if len(args) > len(wanted):
        return [f"{' '.join(path)}: too many arguments {args[len(wanted) :]}"]
    missing = [p.name for p in wanted[len(args) :] if p.required]
    return [f"{' '.join(path)}: missing argument {', '.join(str(m) for m in missing)}"] if missing else []


def _check_pyflyte_run(args: list[str]) -> list[str]:
    args = [a for a in args if a not in ("--remote", "--copy-all")]
    if len(args) < 2:
        return [f"pyflyte run {' '.join(args)}: name a file and a workflow"]
    file, name, rest = REPO / args[0], args[1], args[2:]
    if not file.exists():
        return [f"pyflyte run {args[0]}: no such file"]
    fn = _find_def(file, name)
    if fn is None:
        return [f"pyflyte run {args[0]} {name}: no workflow or task {name!r} defined there"]
    if isinstance(fn, str):
        return []  # an assignment (launch plan, imported alias): inputs are not checked statically
    params = {a.arg: a for a in fn.args.args + fn.args.kwonlyargs}
    n_defaults = len(fn.args.defaults)
    required = {a.arg for a in fn.args.args[: len(fn.args.args) - n_defaults]}
    required |= {a.arg for a, d in zip(fn.args.kwonlyargs, fn.args.kw_defaults, strict=True) if d is None}
    given = {a[2:].split("=", 1)[0].replace("-", "_") for a in rest if a.startswith("--")}
    problems = [
        f"pyflyte run {args[0]} {name}: no input --{g} (inputs: {', '.join(params)})" for g in given - set(params)
    ]
    problems += [f"pyflyte run {args[0]} {name}: required input --{r} not given" for r in sorted(required - given)]
    return problems


def _find_def(file: Path, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef | str | None:
    tree = ast.parse(file.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            return node
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return "assigned"
        if isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == name for a in node.names):
            return "imported"
    return None
