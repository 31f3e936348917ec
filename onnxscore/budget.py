"""Budgets and baselines for ``onnxscore check``: library functions, the CLI is a thin face.

A budget caps a model's figures; it lives in ``pyproject.toml`` under ``[tool.onnxscore]`` or in
``.onnxscore.toml`` (top level), found by walking up from the working directory::

    [tool.onnxscore]
    max_macs = "4.5G"
    max_weight_bytes = "20MB"
    min_netscore = 60
    accuracy = 71.8
    dims = { batch = 1, seq = 128 }

    [[tool.onnxscore.budget]]          # overrides for the models matching a glob
    path = "models/mobile/*.onnx"
    max_macs = "600M"
    max_latency_ms = 25                # the roofline estimate on `device`, in milliseconds
    device = "raspberry-pi-5"          # a built-in profile, or a TOML file (relative to the config)

Counts take K, M, G, T (powers of 1000); bytes take B, KB, MB, GB, TB (1000) and KiB, MiB, GiB,
TiB (1024); growth is a percentage ("5%") or a fraction (0.05).

``max_latency_ms`` caps the *estimated* latency on ``device`` (:func:`onnxscore.device.estimate`,
the roofline of a device profile): arithmetic on the model and the profile, the same on every
machine, so CI stays deterministic. ``device = "local"`` (this machine, measured) is refused.
"""
from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import re
from dataclasses import dataclass, field, fields, replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

# the key and the hit test of a model's cached figures, rank's as much as check's (kept with the
# cache: a study whose every model is a hit needs neither this module nor the analyzer)
from onnxscore.cache import figures_key, usable_hit
from onnxscore.config import ConfigError, cache_folder, find_config, path_setting, settings
from onnxscore.config import where as config_where
from onnxscore.errors import OnnxScoreError
from onnxscore.netscore import ALPHA, BETA, GAMMA, netscore
from onnxscore.report import Report, unsupported_text

BASELINE_FILE = "onnxscore-baseline.json"
BASELINE_SCHEMA = "onnxscore.baseline/1"


_COUNT_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_BYTE_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
               "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
_QUANTITY = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*$")


def parse_quantity(value: Any, kind: str = "count", key: str = "") -> int:
    """``"4.5G"`` -> 4_500_000_000 (kind ``count``), ``"20MB"`` -> 20_000_000 (kind ``bytes``)."""
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if isinstance(value, (int, float)):
        return int(value)
    m = _QUANTITY.match(str(value))
    if not m:
        raise ConfigError(f"{key}: cannot read {value!r} as a {kind} (e.g. {'4.5G' if kind == 'count' else '20MB'})")
    number, unit = float(m.group(1)), m.group(2)
    units = _BYTE_UNITS if kind == "bytes" else _COUNT_UNITS
    scale = units.get(unit.upper() if kind == "bytes" else unit.upper())
    if scale is None or (kind == "count" and unit.upper() == "B"):
        raise ConfigError(f"{key}: unknown unit {unit!r} in {value!r}; use one of "
                          + ", ".join(u for u in units if u))
    return int(round(number * scale))


def parse_fraction(value: Any, key: str = "") -> float:
    """``"5%"`` or ``0.05`` -> 0.05."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    try:
        return float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise ConfigError(f"{key}: cannot read {value!r} as a growth (e.g. \"5%\")") from None


@dataclass(frozen=True)
class Budget:
    """The limits one model must meet; None means no limit."""

    max_params: Optional[int] = None
    max_macs: Optional[int] = None
    max_flops: Optional[int] = None
    max_weight_bytes: Optional[int] = None
    max_peak_activation_bytes: Optional[int] = None
    min_netscore: Optional[float] = None
    accuracy: Optional[float] = None
    disallow_ops: Tuple[str, ...] = ()
    allow_unsupported: bool = False
    max_growth: Optional[float] = None
    dims: Mapping[str, int] = field(default_factory=dict)
    max_latency_ms: Optional[float] = None
    device: Optional[str] = None  # a built-in profile name or a TOML file, for max_latency_ms

    def merged(self, overrides: Mapping[str, Any]) -> "Budget":
        return replace(self, **overrides)


# key -> how to read its value
_KINDS = {"max_params": "count", "max_macs": "count", "max_flops": "count",
          "max_weight_bytes": "bytes", "max_peak_activation_bytes": "bytes",
          "min_netscore": "float", "accuracy": "float", "disallow_ops": "ops",
          "allow_unsupported": "bool", "max_growth": "fraction", "dims": "dims",
          "max_latency_ms": "float", "device": "device"}
_TOP_ONLY = {"baseline", "budget", "accuracy_file", "cache"}  # keys of the top table only


def budget_values(table: Mapping[str, Any], where: str) -> Dict[str, Any]:
    """Read the budget keys of one TOML table (``path`` aside), rejecting unknown keys."""
    out: Dict[str, Any] = {}
    for key, value in table.items():
        kind = _KINDS.get(key)
        if kind is None:
            known = ", ".join(sorted(set(_KINDS) | {"path"}))
            raise ConfigError(f"{where}: unknown key {key!r} (known: {known})")
        label = f"{where}: {key}"
        if kind in ("count", "bytes"):
            out[key] = parse_quantity(value, kind, label)
        elif kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{label}: expected a number, got {value!r}")
            out[key] = float(value)
        elif kind == "fraction":
            out[key] = parse_fraction(value, label)
        elif kind == "device":
            out[key] = _device_name(value, label)
        elif kind == "bool":
            if not isinstance(value, bool):
                raise ConfigError(f"{label}: expected true or false, got {value!r}")
            out[key] = value
        elif kind == "ops":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{label}: expected a list of op types, e.g. [\"LSTM\"]")
            out[key] = tuple(value)
        else:  # dims
            if not isinstance(value, dict) or not all(isinstance(v, int) and v >= 0 for v in value.values()):
                raise ConfigError(f"{label}: expected a table of non-negative ints, e.g. {{ seq = 128 }}")
            out[key] = dict(value)
    return out


def _device_name(value: Any, label: str) -> str:
    """A ``device`` value: a profile name or a TOML path; ``local`` is refused (it depends on the
    machine the check runs on, and a budget must not)."""
    from onnxscore.device import LOCAL

    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{label}: expected a device profile name or a TOML file, got {value!r}")
    if value.strip() == LOCAL:
        raise ConfigError(f"{label}: 'local' is this machine, measured: a budget needs the same estimate on "
                          "every machine; use a built-in profile or a TOML profile file")
    return value.strip()


def _device_relative(values: Dict[str, Any], root: str) -> Dict[str, Any]:
    """A ``device`` that names a file in the config is relative to the config's folder."""
    device = values.get("device")
    if device and (device.endswith(".toml") or "/" in device or os.sep in device) and not os.path.isabs(device):
        values = dict(values, device=os.path.join(root, device))
    return values


@dataclass(frozen=True)
class Config:
    """A base budget, per-glob overrides, and where the baseline lives."""

    base: Budget = Budget()
    overrides: Tuple[Tuple[str, Mapping[str, Any]], ...] = ()
    root: str = "."
    source: Optional[str] = None
    baseline: str = BASELINE_FILE
    accuracy_file: Optional[str] = None
    cache: Optional[str] = None  # cache folder, relative to root; None: the user cache dir

    def budget_for(self, path: str) -> Budget:
        """The base budget with every matching ``[[budget]]`` override applied in order."""
        rel = _relative(path, self.root)
        budget = self.base
        for pattern, values in self.overrides:
            if fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(os.path.basename(path), pattern):
                budget = budget.merged(values)
        return budget

    @property
    def baseline_path(self) -> str:
        return os.path.join(self.root, self.baseline)


def _relative(path: str, root: str) -> str:
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    return rel.replace(os.sep, "/")


def load_config(path: Optional[str] = None, start: str = ".") -> Config:
    """Read ``path`` (or the config found from ``start``); no file found means no limits."""
    path = path or find_config(start)
    if path is None:
        return Config(root=os.path.abspath(start))
    table = settings(path)
    where = config_where(path)
    base = {k: v for k, v in table.items() if k not in _TOP_ONLY}
    overrides = []
    budgets = table.get("budget", [])
    if not isinstance(budgets, list):
        raise ConfigError(f"{where}: 'budget' must be an array of tables ([[tool.onnxscore.budget]])")
    for i, entry in enumerate(budgets):
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise ConfigError(f"{where}: budget #{i + 1} needs a path = \"glob\"")
        values = budget_values({k: v for k, v in entry.items() if k != "path"}, f"{where} budget #{i + 1}")
        overrides.append((entry["path"], _device_relative(values, os.path.dirname(os.path.abspath(path)))))
    for key in ("baseline", "accuracy_file", "cache"):
        path_setting(table, key, path)
    root = os.path.dirname(os.path.abspath(path))
    return Config(base=Budget(**_device_relative(budget_values(base, where), root)), overrides=tuple(overrides),
                  root=root, source=path, baseline=table.get("baseline", BASELINE_FILE),
                  accuracy_file=table.get("accuracy_file"),
                  cache=cache_folder(table, path))


@dataclass(frozen=True)
class Figures:
    """What a check needs of one model: a report's totals, op types and per-layer costs, in a
    form that survives JSON (for the cache and the baseline)."""

    params: int
    macs: int
    flops: int
    weight_bytes: int
    peak_activation_bytes: Optional[int]
    complete: bool
    accuracy: Optional[float]
    op_types: Tuple[str, ...]
    unsupported_ops: Tuple[str, ...]
    unresolved_dims: Tuple[str, ...]
    layers: Mapping[str, Mapping[str, Optional[int]]]
    latency_ms: Optional[float] = None  # the roofline estimate on latency_device (a lower bound when
    latency_device: Optional[str] = None  # latency_unknown layers have no estimate); None: no device
    latency_unknown: int = 0

    @classmethod
    def of(cls, report: Report) -> "Figures":
        t = report.totals
        return cls(params=t.params, macs=t.macs, flops=t.flops, weight_bytes=t.weight_bytes,
                   peak_activation_bytes=t.peak_activation_bytes, complete=t.complete,
                   accuracy=report.netscore.accuracy,
                   op_types=tuple(sorted({f"{x.domain or 'ai.onnx'}::{x.op_type}" for x in report.layers})),
                   unsupported_ops=tuple(report.unsupported_ops),
                   unresolved_dims=tuple(report.unresolved_dims),
                   layers={x.name: {"params": x.params, "macs": x.macs, "flops": x.flops}
                           for x in report.top_layers})

    def with_estimate(self, est) -> "Figures":
        """These figures with the latency of an :class:`onnxscore.device.Estimate`."""
        return replace(self, latency_ms=est.milliseconds, latency_device=est.device.name,
                       latency_unknown=est.unknown)

    def to_dict(self) -> dict:
        """JSON form; without a device, no latency keys (baselines stay as they were). What
        ``dataclasses.asdict`` gives, without its deep copy of every value (a fifth of a small
        model's analysis): the fields hold immutable values but for the layers' dicts, copied."""
        d = {name: getattr(self, name) for name in _FIELD_NAMES
             if self.latency_device is not None or name not in _LATENCY_KEYS}
        d["layers"] = {name: dict(figures) for name, figures in self.layers.items()}
        return d

    def summary(self) -> dict:
        """The whole-model figures, without the per-layer table (cheap: no deep copy)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "layers"
                and (self.latency_device is not None or f.name not in _LATENCY_KEYS)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Figures":
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        for k in ("op_types", "unsupported_ops", "unresolved_dims"):
            values[k] = tuple(values.get(k, ()))
        return cls(**values)


_LATENCY_KEYS = ("latency_ms", "latency_device", "latency_unknown")
_FIELD_NAMES = tuple(f.name for f in fields(Figures))


@dataclass(frozen=True)
class Violation:
    """One figure over its limit (or a rule broken) for one model."""

    path: str
    figure: str
    message: str
    value: Optional[float] = None
    limit: Optional[float] = None

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


_LIMITS = (("max_params", "params", "parameters", "count"), ("max_macs", "macs", "MACs", "count"),
           ("max_flops", "flops", "FLOPs", "count"), ("max_weight_bytes", "weight_bytes", "weight bytes", "bytes"),
           ("max_peak_activation_bytes", "peak_activation_bytes", "peak activation bytes", "bytes"))


def _human(value: float, kind: str) -> str:
    """Three significant digits with trailing zeros kept, so a limit reads ``4.00 G``."""
    scales = ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")) if kind == "bytes" else \
        ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K"))
    for scale, unit in scales:
        if abs(value) >= scale:
            x = value / scale
            return f"{x:.{2 if x < 10 else 1 if x < 100 else 0}f} {unit}"
    return f"{int(value)}{' B' if kind == 'bytes' else ''}"


def _over(value: float, limit: float) -> str:
    return f"+{100 * (value - limit) / limit:.0f}%" if limit else "over a limit of 0"


def evaluate(figures: Figures, budget: Budget, path: str, baseline: Optional[Figures] = None,
             alpha: float = ALPHA, beta: float = BETA, gamma: float = GAMMA) -> List[Violation]:
    """Every way ``figures`` break ``budget`` (and grow past the baseline): empty means within."""
    out: List[Violation] = []
    for key, attr, label, kind in _LIMITS:
        limit = getattr(budget, key)
        if limit is None:
            continue
        value = getattr(figures, attr)
        if value is None:
            out.append(Violation(path, attr, f"{label} unknown (shapes unresolved), budget "
                                 f"{_human(limit, kind)}: pass dims in the config or --dim"))
        elif value > limit:
            out.append(Violation(path, attr, f"{label} {_human(value, kind)} exceed budget "
                                 f"{_human(limit, kind)} ({_over(value, limit)})", value, limit))
    if figures.unsupported_ops and not budget.allow_unsupported:
        out.append(Violation(path, "unsupported", unsupported_text(dict.fromkeys(figures.unsupported_ops))
                             + " (totals are lower bounds; set allow_unsupported = true to accept)"))
    if figures.unresolved_dims and any(getattr(budget, k) is not None for k, *_ in _LIMITS):
        out.append(Violation(path, "unresolved", "costs unknown until dims are set: "
                             + ", ".join(figures.unresolved_dims) + " (set dims = { NAME = N } or --dim)"))
    banned = sorted(op for op in figures.op_types
                    if op.split("::")[-1] in budget.disallow_ops or op in budget.disallow_ops)
    if banned:
        out.append(Violation(path, "disallowed", "uses disallowed op(s) " + ", ".join(banned)))
    if budget.min_netscore is not None:
        accuracy = budget.accuracy if budget.accuracy is not None else figures.accuracy
        ns = netscore(accuracy, figures.params, figures.macs, alpha, beta, gamma)
        if ns.value is None:
            out.append(Violation(path, "netscore", f"NetScore cannot be computed ({ns.missing}); "
                                 f"budget min_netscore {budget.min_netscore:g}"))
        elif ns.value < budget.min_netscore:
            out.append(Violation(path, "netscore", f"NetScore {ns.value:.2f} below budget "
                                 f"{budget.min_netscore:g} (a in %, p in M params, m in GMACs)",
                                 ns.value, budget.min_netscore))
    if budget.max_latency_ms is not None:
        out += _latency(figures, budget, path)
    if baseline is not None and budget.max_growth is not None:
        out += growth(figures, baseline, budget.max_growth, path)
    return out


def _latency(figures: Figures, budget: Budget, path: str) -> List[Violation]:
    """``max_latency_ms`` against the estimate: over it, or unknown (some layer without an
    estimate, and the lower bound within the limit)."""
    limit, value = budget.max_latency_ms, figures.latency_ms
    if value is None:
        return [Violation(path, "latency", f"estimated latency not computed (no device), budget {limit:g} ms: "
                                           "set device = NAME or --device")]
    on = f"on {figures.latency_device}"
    if value > limit:
        lower = "at least " if figures.latency_unknown else ""
        return [Violation(path, "latency", f"estimated latency {lower}{value:.3f} ms {on} exceeds budget "
                                           f"{limit:g} ms ({_over(value, limit)})", value, limit)]
    if figures.latency_unknown:
        return [Violation(path, "latency", f"estimated latency unknown {on}: {figures.latency_unknown} layer(s) "
                                           f"without an estimate (lower bound {value:.3f} ms), budget {limit:g} ms")]
    return []


def growth(figures: Figures, baseline: Figures, tolerance: float, path: str, top: int = 5) -> List[Violation]:
    """Figures that grew past ``tolerance`` over the baseline, naming the layers that grew most."""
    out = []
    grown_layers = _grown_layers(figures, baseline)
    for _, attr, label, kind in _LIMITS:
        now, before = getattr(figures, attr), getattr(baseline, attr)
        if now is None or before is None or now <= before * (1 + tolerance):
            continue
        change = f"+{100 * (now - before) / before:.1f}%" if before else "from 0"
        layers = [name for name, measure, _ in grown_layers if measure == ("params" if attr in ("params", "weight_bytes") else "macs")]
        where = f"; grew most: {', '.join(layers[:top])}" if layers else ""
        out.append(Violation(path, f"growth:{attr}", f"{label} grew {change} over the baseline "
                             f"({_human(before, kind)} -> {_human(now, kind)}, tolerance "
                             f"{100 * tolerance:g}%){where}", now, before * (1 + tolerance)))
    return out


def _grown_layers(figures: Figures, baseline: Figures) -> List[Tuple[str, str, int]]:
    """(layer, measure, increase) for every layer whose params or MACs grew, largest first;
    a layer new since the baseline grows from 0."""
    rows = []
    for name, now in figures.layers.items():
        before = baseline.layers.get(name, {})
        for measure in ("params", "macs"):
            a, b = before.get(measure) or 0, now.get(measure) or 0
            if b > a:
                rows.append((name, measure, b - a))
    return sorted(rows, key=lambda r: r[2], reverse=True)


def read_baseline(path: str) -> Dict[str, Figures]:
    """The baseline file: model path (relative to the config's folder) -> Figures."""
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if data.get("schema") != BASELINE_SCHEMA:
            raise ConfigError(f"{path}: not an onnxscore baseline (schema {data.get('schema')!r})")
        return {k: Figures.from_dict(v) for k, v in data["models"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ConfigError(f"{path}: unreadable baseline ({type(e).__name__}: {e})") from None


def write_baseline(path: str, models: Mapping[str, Figures]) -> None:
    """Stable, diff-friendly JSON: sorted keys, one figure per line, raw integers."""
    data = {"schema": BASELINE_SCHEMA, "models": {k: models[k].to_dict() for k in sorted(models)}}
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except OSError as e:  # no such folder, no permission, a full disk: said, not a bug of ours
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise ConfigError(f"{path}: cannot write the baseline ({e.strerror or e})") from None


def read_accuracy_file(path: str) -> Dict[str, float]:
    """``{"models/a.onnx": 71.8, ...}`` (JSON) -> the top-1 accuracy of each model, in %."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: unreadable accuracy file ({e})") from None
    if not isinstance(data, dict) or not all(isinstance(v, (int, float)) for v in data.values()):
        raise ConfigError(f"{path}: expected a JSON object of model path -> top-1 accuracy in %")
    return {k.replace(os.sep, "/"): float(v) for k, v in data.items()}


@dataclass(frozen=True)
class ModelResult:
    """One model's check: its figures, the budget applied, what it broke, and whether the
    figures came from the cache."""

    path: str
    figures: Figures
    budget: Budget
    violations: Tuple[Violation, ...]
    cached: bool = False


@dataclass(frozen=True)
class CheckResult:
    models: Tuple[ModelResult, ...]
    errors: Tuple[str, ...]  # unusable models, one line each
    baseline_written: Optional[str] = None
    internal: Tuple[Tuple[str, Exception], ...] = ()  # (model, exception): bugs of onnxscore

    @property
    def over_budget(self) -> Tuple[ModelResult, ...]:
        return tuple(m for m in self.models if m.violations)


def figures_for(path: str, dims: Mapping[str, int], input_shapes: Mapping[str, Sequence[int]],
                cache=None, values: Optional[Mapping[str, Any]] = None, device=None) -> Tuple[Figures, bool]:
    """The model's figures, from the cache when the file, version and options are unchanged
    (a hit imports neither onnx nor the analyzer). With ``device`` (an
    :class:`onnxscore.device.Device`) the figures hold the estimated latency on it, and the
    cache key holds the whole profile: an edited profile is a new key, never a stale estimate."""
    key = None
    if cache is not None:
        key = figures_key(path, dims, input_shapes, values, device, cache)
        if key is not None:
            hit = cache.get(key)
            if usable_hit(hit, device):
                return Figures.from_dict(hit), True
    if device is not None:
        from onnxscore.device import analyze_for_estimate, estimate

        report, info = analyze_for_estimate(path, dims, input_shapes, values)
        figures = Figures.of(report).with_estimate(estimate(report, device, info))
    else:
        from onnxscore.walk import analyze

        figures = Figures.of(analyze(path, dims, input_shapes, values=values))
    if cache is not None and key is not None:
        cache.put(key, figures.to_dict())
    return figures, False


def check(paths: Sequence[str], config: Config, overrides: Optional[Mapping[str, Any]] = None,
          dims: Optional[Mapping[str, int]] = None,
          input_shapes: Optional[Mapping[str, Sequence[int]]] = None, cache=None,
          update_baseline: bool = False, values: Optional[Mapping[str, Any]] = None) -> CheckResult:
    """Check each model against its budget (config, then ``overrides``) and the baseline.

    With ``update_baseline`` the current figures are written to the baseline instead (models
    not checked this time keep their entries) and nothing is reported as a violation.
    """
    baseline = read_baseline(config.baseline_path)
    accuracies = read_accuracy_file(os.path.join(config.root, config.accuracy_file)) \
        if config.accuracy_file else {}
    results, errors, internal = [], [], []
    devices: Dict[str, Any] = {}  # profile name or file -> Device, each read once
    for path in paths:
        budget = config.budget_for(path).merged(dict(overrides or {}))
        rel = _relative(path, config.root)
        if budget.accuracy is None and rel in accuracies:
            budget = budget.merged({"accuracy": accuracies[rel]})
        if budget.max_latency_ms is not None and budget.device is None:
            errors.append(f"{path}: max_latency_ms = {budget.max_latency_ms:g} needs a device (device = "
                          "\"raspberry-pi-5\" or a TOML profile in the config, or --device)")
            continue
        try:
            device = None
            if budget.device is not None:
                if budget.device not in devices:
                    from onnxscore.device import load_device

                    devices[budget.device] = load_device(budget.device)
                device = devices[budget.device]
            figures, cached = figures_for(path, {**budget.dims, **(dims or {})}, input_shapes or {}, cache,
                                          values, device)
        except OnnxScoreError as e:
            errors.append(str(e))
            continue
        except Exception as e:  # noqa: BLE001 - a bug of onnxscore, not of the model
            internal.append((path, e))
            continue
        found = () if update_baseline else tuple(evaluate(figures, budget, path, baseline.get(rel)))
        results.append(ModelResult(path, figures, budget, found, cached))
    written = None
    if update_baseline and results:
        merged = dict(baseline)
        merged.update({_relative(r.path, config.root): r.figures for r in results})
        write_baseline(config.baseline_path, merged)
        written = config.baseline_path
    return CheckResult(tuple(results), tuple(errors), written, tuple(internal))


SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".onnxscore_cache", ".tox"}


def discover(root: str) -> List[str]:
    """Every ``*.onnx`` under ``root``, skipping VCS, virtualenv and cache folders; paths are
    relative to the working directory when they lie below it."""
    found = []
    here = os.path.abspath(".")
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for f in sorted(files):
            if f.endswith(".onnx"):
                path = os.path.abspath(os.path.join(folder, f))
                found.append(os.path.relpath(path, here) if path.startswith(here + os.sep) else path)
    return found
