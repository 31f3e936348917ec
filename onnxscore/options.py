"""Parsing of the --dim, --input and --value options (light: no onnx import, for a fast CLI start)."""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple, Union

from onnxscore.errors import UsageError

# What hotspots may be ranked by (Report.top_layers, ``hotspots --by``): defined here, where the
# CLI reads its choices without importing the report's classes.
MEASURES = ("macs", "flops", "params", "memory")


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


Number = Union[int, float]


def parse_values(items: Sequence[str]) -> Dict[str, Union[Number, List[Number]]]:
    """``["sr=16000", "scales=1,1,2,2"]`` -> ``{"sr": 16000, "scales": [1, 1, 2, 2]}``."""
    values: Dict[str, Union[Number, List[Number]]] = {}
    for item in items:
        name, sep, text = item.partition("=")
        try:
            numbers = [float(p) if any(c in p for c in ".eE") else int(p) for p in text.split(",")]
        except ValueError:
            numbers = []
        if not sep or not name.strip() or not numbers:
            raise UsageError(f"--value {item!r}: expected NAME=NUMBER or NAME=N1,N2,..., "
                             "e.g. --value sr=16000")
        values[name.strip()] = numbers[0] if len(numbers) == 1 and "," not in text else numbers
    return values
