"""Reading a configuration file of YAML: every way it can fail is a ConfigError naming the file and what to do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from flytekitplugins.aios_core.errors import ConfigError


def read_yaml(path: Path, what: str) -> Any:
    """The YAML document in ``path`` (None for an empty file), or a ConfigError naming ``what`` (``profile file``,
    ``policy test file``) and the file: unreadable, not UTF-8 text, nested deeper than the parser goes (a few kilobytes
    of brackets ended in a RecursionError), or not YAML."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{what} {path} is not UTF-8 text (byte {e.start} cannot be read): save it as UTF-8") from e
    except OSError as e:
        raise ConfigError(f"cannot read {what} {path}: {e.strerror or e}") from e
    try:
        return yaml.safe_load(text)
    except RecursionError as e:
        raise ConfigError(f"{what} {path} nests its values too deeply to read: fix the file") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{what} {path} is not valid YAML: {e}") from e


__all__ = ["read_yaml"]
