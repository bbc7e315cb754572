"""Reading a file someone edits or sends (a profile, roles.yaml, a policy test case, a proof, evidence): every way
it can fail is a ConfigError naming the file and what to do (the CLI prints it as one ``error:`` line, exit 2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from flytekitplugins.aios_core.errors import ConfigError


def read_text(path: str | Path, what: str) -> str:
    """The UTF-8 text of ``path``, or a ConfigError naming ``what`` (``profile file``, ``proof file``) and the file:
    unreadable, or not UTF-8 text."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{what} {path} is not UTF-8 text (byte {e.start} cannot be read): save it as UTF-8") from e
    except OSError as e:
        raise ConfigError(f"cannot read {what} {path}: {e.strerror or e}") from e


def parse_json(text: str, source: str) -> Any:
    """``text`` parsed as JSON, or a ConfigError naming ``source`` (a file, an option) and what is wrong with it: not
    JSON, or nested too deeply for the parser (a few kilobytes of brackets ended in a RecursionError, exit 4)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ConfigError(f"{source} nests its values too deeply to read; fix it") from None
    except ValueError as e:
        raise ConfigError(f"{source} is not JSON ({e}); fix it") from None


def read_yaml(path: Path, what: str) -> Any:
    """The YAML document in ``path`` (None for an empty file), or a ConfigError naming ``what`` and the file: as
    :func:`read_text`, nested deeper than the parser goes, or not YAML."""
    text = read_text(path, what)
    try:
        return yaml.safe_load(text)
    except RecursionError as e:
        raise ConfigError(f"{what} {path} nests its values too deeply to read: fix the file") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{what} {path} is not valid YAML: {e}") from e


__all__ = ["parse_json", "read_text", "read_yaml"]
