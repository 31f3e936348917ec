"""Parsing of the --dim and --input options (light: no onnx import, for a fast CLI start)."""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

from onnxscore.errors import UsageError


def parse_dims(items: Sequence[str]) -> Dict[str, int]:
    """``["batch=1", "seq=128"]`` -> ``{"batch": 1, "seq": 128}``."""
    dims: Dict[str, int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip().isdigit():
            raise UsageError(f"--dim {item!r}: expected NAME=INT, e.g. --dim batch=1")
        dims[name.strip()] = int(value)
    return dims


def parse_input_shapes(items: Sequence[str]) -> Dict[str, Tuple[int, ...]]:
    """``["x=1x3x224x224"]`` -> ``{"x": (1, 3, 224, 224)}`` (``,`` also separates dims)."""
    shapes: Dict[str, Tuple[int, ...]] = {}
    for item in items:
        name, sep, value = item.rpartition("=")
        parts = value.replace(",", "x").split("x") if value else []
        if not sep or not name or not parts or not all(p.strip().isdigit() for p in parts):
            raise UsageError(f"--input {item!r}: expected NAME=D1xD2x..., e.g. --input x=1x3x224x224")
        shapes[name] = tuple(int(p) for p in parts)
    return shapes
