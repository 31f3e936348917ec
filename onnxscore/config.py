"""Where onnxscore's settings live: the nearest ``.onnxscore.toml``, or ``pyproject.toml`` with a
``[tool.onnxscore]`` table, from the working folder up. Light (no onnx, no report): ``rank``
reads the cache folder from here before anything else is imported.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Dict, Optional

from onnxscore.errors import OnnxScoreError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python < 3.11 only
    import tomli as tomllib


class ConfigError(OnnxScoreError):
    """A budget configuration that does not parse, or names an unknown key or unit."""


def find_config(start: str = ".") -> Optional[str]:
    """The nearest ``pyproject.toml`` with a ``[tool.onnxscore]`` table, or ``.onnxscore.toml``,
    from ``start`` up to the filesystem root."""
    folder = os.path.abspath(start)
    while True:
        dotfile = os.path.join(folder, ".onnxscore.toml")
        if os.path.isfile(dotfile):
            return dotfile
        pyproject = os.path.join(folder, "pyproject.toml")
        if os.path.isfile(pyproject) and "onnxscore" in read_toml(pyproject).get("tool", {}):  # (read once)
            return pyproject
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def read_toml(path: str) -> Dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror or e})") from None


def settings(path: str) -> Dict[str, Any]:
    """The onnxscore table of config file ``path`` (the whole of a ``.onnxscore.toml``)."""
    data = read_toml(path)
    table = data.get("tool", {}).get("onnxscore") if os.path.basename(path) == "pyproject.toml" else data
    if table is None:
        raise ConfigError(f"{path}: no [tool.onnxscore] table")
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.onnxscore] must be a table")
    return table


def where(path: str) -> str:
    """How an error names the config: ``pyproject.toml [tool.onnxscore]``, or the file."""
    return f"{path} [tool.onnxscore]" if path.endswith("pyproject.toml") else path


def path_setting(table: Dict[str, Any], key: str, path: str) -> Optional[str]:
    """Setting ``key`` of config ``path``'s ``table``: a path string, or None when not set."""
    if key in table and not isinstance(table[key], str):
        raise ConfigError(f"{where(path)}: {key} must be a path string")
    return table.get(key)


def cache_folder(table: Dict[str, Any], path: str) -> Optional[str]:
    """The result cache folder config ``path``'s ``table`` names (``cache = "..."``, relative
    to the config's folder), or None: the default one (see :func:`onnxscore.cache.default_dir`)."""
    cache = path_setting(table, "cache", path)
    return None if cache is None else os.path.join(os.path.dirname(os.path.abspath(path)), cache)


def configured_cache(start: str = ".") -> Optional[str]:
    """:func:`cache_folder` of the nearest config, None when there is none."""
    path = find_config(start)
    return None if path is None else cache_folder(settings(path), path)
