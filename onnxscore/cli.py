"""Thin click commands: parse -> call the library -> render -> exit code.

Exit status: 0 success; 1 with ``--strict`` when a cost is unknown or an op has no rule (or
``check`` finds a model over budget); 2 when an input is unusable (not ONNX, truncated,
cyclic, absurd dims, bad options); 3 on an internal error (a bug of onnxscore); 130 when
interrupted (Ctrl-C), with one line on stderr.
"""
from __future__ import annotations

import contextlib
import functools
import gc
import json
import os
import sys
from typing import TYPE_CHECKING, List, Optional, Union

import click

from onnxscore.errors import OnnxScoreError, UsageError
from onnxscore.options import MEASURES, parse_dims, parse_input_shapes, parse_values
from onnxscore.netscore import ALPHA, BETA, GAMMA
from onnxscore.render import FORMATS, MAX_ROWS

if TYPE_CHECKING:  # imported where used: a command imports what it needs (a cached rank, no report)
    from onnxscore.report import Report

EXIT_OK, EXIT_STRICT, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command ended by Ctrl-C


def _fail(message: str) -> None:
    """One line on stderr, whatever the message holds (a file name with a newline, say)."""
    from onnxscore.render.units import printable

    click.echo(f"onnxscore: error: {printable(message)}", err=True)


def shape_options(fn):
    """--dim, --input and --value, meaning the same in every command."""
    fn = click.option("--value", "values", multiple=True, metavar="NAME=V[,V...]",
                      help="Value of a small model input, e.g. --value sr=16000: shape computations "
                           "and If conditions that depend on it are evaluated.")(fn)
    fn = click.option("--input", "input_shapes", multiple=True, metavar="NAME=D1xD2x...",
                      help="Whole shape of a model input, e.g. --input x=1x3x224x224.")(fn)
    fn = click.option("--dim", "dims", multiple=True, metavar="NAME=INT",
                      help="Value of a symbolic dimension, e.g. --dim batch=1 --dim seq=128.")(fn)
    return fn


def exponent_options(fn):
    """--alpha, --beta and --gamma: the NetScore exponents."""
    fn = click.option("--gamma", type=float, default=GAMMA, show_default=True,
                      help="NetScore exponent of MACs.")(fn)
    fn = click.option("--beta", type=float, default=BETA, show_default=True,
                      help="NetScore exponent of parameters.")(fn)
    fn = click.option("--alpha", type=float, default=ALPHA, show_default=True,
                      help="NetScore exponent of accuracy.")(fn)
    return fn


def netscore_options(fn):
    """--accuracy (a percent) and the NetScore exponents."""
    fn = exponent_options(fn)
    fn = click.option("--accuracy", type=float, default=None, metavar="PERCENT",
                      help="Top-1 accuracy in % for NetScore (default: the model's "
                           "'onnxscore.accuracy' metadata).")(fn)
    return fn


def format_option(fn):
    return click.option("--format", "fmt", type=click.Choice(FORMATS), default="text",
                        show_default=True, help="Output format.")(fn)


def device_option(fn):
    """--device: the roofline estimate on a device profile, meaning the same in every command."""
    return click.option("--device", default=None, metavar="NAME|FILE.toml",
                        help="Estimate latency on a device: a built-in profile (raspberry-pi-5, "
                             "jetson-orin-nano-8gb, jetson-agx-orin-64gb), 'local' (this machine, "
                             "calibrated once) or a TOML profile file.")(fn)


MEASURE_HELP = ("Run the model in onnxruntime on the CPU: latency percentiles and time per layer "
                "(pip install 'onnxscore[measure]').")


def measure_options(fn, measure_help: str = MEASURE_HELP):
    """--measure, --runs, --warmup and --threads: measured latency with onnxruntime (``measure_help``:
    what --measure adds to the command)."""
    fn = click.option("--threads", type=click.IntRange(0), default=None,
                      help="onnxruntime intra-op threads for --measure (default: onnxruntime's).")(fn)
    fn = click.option("--warmup", type=click.IntRange(0), default=3, show_default=True,
                      help="Untimed runs before the timed ones (--measure).")(fn)
    fn = click.option("--runs", type=click.IntRange(1), default=20, show_default=True,
                      help="Timed runs (--measure).")(fn)
    fn = click.option("--measure", "measure_on", is_flag=True, help=measure_help)(fn)
    return fn


def _load_device(name: Optional[str]):
    """The --device profile (a one-line error when it cannot be read), or None."""
    if name is None:
        return None
    from onnxscore.device import load_device

    return load_device(name)


def _needs_onnxruntime(measure_on: bool) -> None:
    """--measure without onnxruntime: one line naming the extra (exit 2), before any analysis."""
    if measure_on:
        from onnxscore.measure import _ort

        _ort()


def _timing(reports, infos, device, measure_on, runs, warmup, threads):
    """The estimate and the measurement of each report (None where not asked for or where the
    measurement failed, that failure one line on stderr); and the exit status the failures call
    for."""
    estimates = measurements = None
    status = EXIT_OK
    if device is not None:
        from onnxscore.device import estimate

        estimates = [estimate(r, device, info) for r, info in zip(reports, infos)]
    if measure_on:
        from onnxscore.measure import measure

        measurements = []
        for r in reports:
            try:
                measurements.append(measure(r.model.path, r, runs=runs, warmup=warmup, threads=threads or None))
            except OnnxScoreError as e:
                _fail(str(e))
                status = EXIT_BAD_INPUT
                measurements.append(None)
    return estimates, measurements, status


def _internal(where: str, e: BaseException) -> None:
    """A bug of onnxscore, not a problem of the model: one line that says so (exit 3); the
    traceback with --debug."""
    first = str(e).splitlines()[0] if str(e) else ""
    _fail(f"internal error (a bug in onnxscore, not in the model) {where}: {type(e).__name__}: "
          f"{first}; rerun with --debug for the traceback")
    if click.get_current_context(silent=True) is not None and \
            click.get_current_context().find_root().params.get("debug"):
        import traceback

        traceback.print_exc()


def _guard(fn):
    """Library errors become one line on stderr and exit status 2, a bug of ours exit status 3,
    an interrupt (Ctrl-C) ``onnxscore: interrupted`` and 130 (not click's "Aborted!" and 1,
    which ``check`` uses for a model over budget); never a traceback (unless --debug)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except OnnxScoreError as e:
            _fail(str(e))
            sys.exit(EXIT_BAD_INPUT)
        except KeyboardInterrupt:
            click.echo("onnxscore: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except (SystemExit, click.exceptions.Exit, click.ClickException):
            raise
        except Exception as e:  # noqa: BLE001 - a bug of ours: say so
            _internal(f"in {fn.__name__.replace('_command', '')}", e)
            sys.exit(EXIT_INTERNAL)

    return wrapper


def _analyze_all(models, dim_values, shapes, values, accuracy=None, alpha=ALPHA, beta=BETA, gamma=GAMMA,
                 infos=None):
    """Analyze each model with parsed --dim and --input values; a model that cannot be read is
    one line on stderr, and so is a bug of ours. Returns the reports and the exit status the
    failures call for: 0 none, 2 an unusable model, 3 an internal error. With ``infos`` (a
    list), each report's :func:`onnxscore.device.layer_info` is appended to it (for --device)."""
    from onnxscore.walk import analyze as run

    reports: List[Report] = []
    status = EXIT_OK
    for path in models:
        try:
            if infos is not None:
                from onnxscore.device import analyze_for_estimate

                report, info = analyze_for_estimate(path, dim_values, shapes, parse_values(values), accuracy,
                                                    alpha, beta, gamma)
                reports.append(report)
                infos.append(info)
                continue
            reports.append(run(path, dim_values, shapes, accuracy, alpha, beta, gamma,
                               values=parse_values(values)))
        except OnnxScoreError as e:
            _fail(str(e))
            status = max(status, EXIT_BAD_INPUT)
        except Exception as e:  # noqa: BLE001 - a bug of ours: say so, go on with the others
            _internal(f"while analyzing {path}", e)
            status = EXIT_INTERNAL
        if len(models) > 1:
            gc.collect()  # what this analysis left in cycles, before the next (see main)
    return reports, status


def terminal_width(output: Optional[str]) -> Optional[int]:
    """The width the text report is laid out at (80 columns at least): ``COLUMNS`` when it is
    set, else the terminal's when the report goes to one, else None (80 columns: piped or to a
    file, so that what a script reads does not depend on a window)."""
    env = os.environ.get("COLUMNS", "")
    if env.isdigit():
        return max(int(env), 80)
    if output is not None or not sys.stdout.isatty():
        return None
    import shutil

    return max(shutil.get_terminal_size((80, 24)).columns, 80)


def _emit(text: Union[str, bytes], output: Optional[str]) -> None:
    """Write a rendered report (a model's path that is not UTF-8 shown as ``\\xff``)."""
    if not isinstance(text, bytes):
        from onnxscore.render.units import utf8

        text = utf8(text)
    if output:
        with _writing(output), open(output, "wb") as f:
            f.write(text)
    else:
        click.echo(text, nl=False)  # (bytes to the binary stream)


@contextlib.contextmanager
def _writing(path: str):
    """An output file that cannot be written (no such folder, no permission, a full disk) is a
    bad option, said in one line (exit 2), not a bug of ours."""
    try:
        yield
    except OSError as e:
        raise UsageError(f"{path}: cannot write ({e.strerror or e})") from None


def depth_option(fn):
    return click.option("--depth", type=click.IntRange(1, 32), default=1, show_default=True,
                        help="Scope depth of the block roll-up (1 = top-level modules).")(fn)


def output_option(fn):
    return click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
                        help="Write to this file instead of standard output.")(fn)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="onnxscore")
@click.option("--debug", is_flag=True, help="On an internal error (exit 3), print the traceback.")
def main(debug: bool) -> None:
    """Exact parameters, MACs, FLOPs and NetScore of ONNX models, layer by layer.

    Exit status: 0 analyzed (or within budget), 1 --strict or over budget, 2 an unusable input
    or option, 3 an internal error (a bug in onnxscore: please report it with --debug's output).
    """
    # A command makes millions of small objects and almost no cycles: the cyclic collector's
    # passes took over half the time of rendering a 200,000-layer report. It stays off for the
    # command (restored after it: the CLI also runs inside other processes, e.g. tests);
    # _analyze_all collects once after each model.
    if gc.isenabled():
        gc.disable()
        click.get_current_context().call_on_close(gc.enable)


@main.command()
@click.argument("models", nargs=-1, required=True, type=click.Path(dir_okay=True))
@shape_options
@netscore_options
@format_option
@click.option("--top", type=int, default=10, show_default=True, help="How many hotspot layers to list.")
@click.option("--layers/--no-layers", default=True, show_default=True, help="Show the per-layer table.")
@click.option("--all-layers", is_flag=True, help="Include zero-cost layers in the text and Markdown tables.")
@click.option("--max-rows", type=click.IntRange(0), default=MAX_ROWS, show_default=True,
              help="Rows of the text, Markdown and HTML tables of layers and blocks (the first ones, in "
                   "graph order); 0 for all. CSV and JSON list every layer.")
@click.option("--strict", is_flag=True, help="Exit 1 if any op has no rule or any cost is unknown.")
@click.option("--explain", is_flag=True,
              help="For unknown costs: where each shape was lost, why, and the tensors in between.")
@depth_option
@click.option("--sweep", "sweeps", multiple=True, metavar="NAME=V1,V2,...",
              help="Costs at each value of a symbolic dim, from the exact polynomials "
                   "(repeatable: every combination), e.g. --sweep seq=128,2048,32768.")
@click.option("--html", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Also write a self-contained HTML report (tables and charts) to this file.")
@click.option("--plot", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Also write the charts as a PNG image (needs matplotlib).")
@click.option("--indent", is_flag=True, help="Indent JSON by two spaces (default: compact, one line).")
@device_option
@measure_options
@output_option
@_guard
def analyze(models, dims, input_shapes, values, accuracy, alpha, beta, gamma, fmt, top, layers, all_layers,
            max_rows, strict, explain, depth, sweeps, html, plot, indent, device, measure_on, runs, warmup, threads,
            output) -> None:
    """Analyze MODELS: totals, NetScore, hotspots and the per-layer table; with --device the
    estimated latency on a device, with --measure the latency measured with onnxruntime.

    \b
    Example:
      onnxscore analyze resnet50.onnx --accuracy 76.1
      onnxscore analyze bert.onnx --dim batch=1 --dim sequence=128 --format json
      onnxscore analyze model.onnx --depth 2 --html report.html --plot report.png
      onnxscore analyze llm.onnx --sweep seq=128,2048,32768
      onnxscore analyze silero_vad.onnx --value sr=16000 --explain
      onnxscore analyze resnet50.onnx --device raspberry-pi-5 --no-layers
      onnxscore analyze resnet50.onnx --measure --runs 50 --threads 4
    """
    from onnxscore.render import render_bytes
    from onnxscore.sweep import parse_sweep, sweep

    grid = parse_sweep(sweeps)
    dim_values = parse_dims(dims)
    clash = sorted(set(grid) & set(dim_values))
    if clash:
        raise UsageError(f"--sweep and --dim both set {', '.join(clash)}: a swept dim stays symbolic")
    profile = _load_device(device)
    _needs_onnxruntime(measure_on)
    infos = [] if profile is not None else None
    reports, failed = _analyze_all(models, dim_values, parse_input_shapes(input_shapes), values, accuracy, alpha,
                                   beta, gamma, infos=infos)
    estimates, measurements, timing_failed = _timing(reports, infos, profile, measure_on, runs, warmup, threads)
    failed = max(failed, timing_failed)
    if reports:
        try:
            swept = [sweep(r, grid, dim_values) for r in reports] if grid else None
            _emit(render_bytes(reports, fmt, top=top, depth=depth, layers=layers, all_layers=all_layers,
                               max_rows=max_rows, sweeps=swept, explain=explain, width=terminal_width(output),
                               estimates=estimates, measurements=measurements,
                               **({"indent": True} if indent and fmt == "json" else {})), output)
            if html:
                from onnxscore.render.html import to_html
                _emit(to_html(reports, depth=depth, top=top, estimates=estimates, measurements=measurements,
                              max_rows=max_rows), html)
            if plot:
                from onnxscore.render.plot import to_png
                with _writing(plot):
                    to_png(reports, plot, depth=depth, top=top, estimates=estimates, measurements=measurements)
        except OnnxScoreError as e:
            _fail(str(e))
            sys.exit(EXIT_BAD_INPUT)
        except Exception as e:  # noqa: BLE001 - a bug of ours, as in _analyze_all
            _internal("while rendering the report", e)
            sys.exit(EXIT_INTERNAL)
    if failed:
        sys.exit(failed)
    if strict and any(not r.totals.complete for r in reports):
        for r in reports:
            if not r.totals.complete:
                _fail(f"{r.model.path}: --strict: some costs are unknown or unsupported "
                      f"({', '.join(r.unsupported_ops) or ', '.join(r.unresolved_dims) or 'see warnings'})")
        sys.exit(EXIT_STRICT)


@main.command()
@click.argument("models", nargs=-1, required=True, type=click.Path(dir_okay=True))
@shape_options
@format_option
@click.option("-k", "--top", "k", type=click.IntRange(1), default=10, show_default=True,
              help="How many layers.")
@click.option("--by", type=click.Choice(MEASURES + ("est", "time")), default="macs", show_default=True,
              help="Rank by MACs, FLOPs, parameters, bytes moved (memory), the estimated time "
                   "(est, with --device) or the time measured per layer (time, with --measure).")
@device_option
@measure_options
@output_option
@_guard
def hotspots(models, dims, input_shapes, values, fmt, k, by, device, measure_on, runs, warmup, threads,
             output) -> None:
    """The top-k layers of MODELS by one measure, with share and cumulative share (with
    --device their estimated time, with --measure their measured time).

    \b
    Example:
      onnxscore hotspots resnet50.onnx -k 5 --by macs
      onnxscore hotspots bert.onnx --dim seq=128 --by memory --format md
      onnxscore hotspots mobilenet.onnx --device raspberry-pi-5 --by est
      onnxscore hotspots mobilenet.onnx --measure --by time
    """
    from onnxscore.render.hotspots import render_hotspots

    if by == "est" and device is None:
        raise UsageError("--by est ranks by the estimated time: give a --device")
    if by == "time" and not measure_on:
        raise UsageError("--by time ranks by the time measured per layer: give --measure")
    profile = _load_device(device)
    _needs_onnxruntime(measure_on)
    infos = [] if profile is not None else None
    reports, failed = _analyze_all(models, parse_dims(dims), parse_input_shapes(input_shapes), values, infos=infos)
    estimates, measurements, timing_failed = _timing(reports, infos, profile, measure_on, runs, warmup, threads)
    if reports:
        _emit(render_hotspots(reports, fmt, k, by, width=terminal_width(output), estimates=estimates,
                              measurements=measurements), output)
    sys.exit(max(failed, timing_failed))


@main.command("compare")
@click.argument("model_a", type=click.Path(dir_okay=True))
@click.argument("model_b", type=click.Path(dir_okay=True))
@shape_options
@format_option
@depth_option
@click.option("-k", "--top", "k", type=click.IntRange(1), default=10, show_default=True,
              help="How many changed layers, blocks and op types to list.")
@device_option
@measure_options
@output_option
@_guard
def compare_command(model_a, model_b, dims, input_shapes, values, fmt, depth, k, device, measure_on, runs, warmup,
                    threads, output) -> None:
    """Compare MODEL_A (before) with MODEL_B (after): totals with deltas, and the layers,
    blocks and op types whose cost changed most (with --device or --measure, the latency of
    both and its delta).

    \b
    Example:
      onnxscore compare model.onnx model.int8.onnx
      onnxscore compare base.onnx pruned.onnx --depth 2 --format md
      onnxscore compare model.onnx model.int8.onnx --device jetson-orin-nano-8gb --measure
    """
    from onnxscore.compare import compare
    from onnxscore.render.compare import render_comparison

    profile = _load_device(device)
    _needs_onnxruntime(measure_on)
    infos = [] if profile is not None else None
    reports, failed = _analyze_all((model_a, model_b), parse_dims(dims), parse_input_shapes(input_shapes),
                                   values, infos=infos)
    if failed:
        sys.exit(failed)
    estimates, measurements, failed = _timing(reports, infos, profile, measure_on, runs, warmup, threads)
    if failed:
        sys.exit(failed)
    _emit(render_comparison(compare(reports[0], reports[1], depth), fmt, k, estimates=estimates,
                            measurements=measurements), output)


def _limit_options(fn):
    """The budget keys as one-off flags; they override the config for this run."""
    for flag, help_text in reversed((
            ("--max-params", "Most parameters, e.g. 25M."),
            ("--max-macs", "Most MACs, e.g. 4.5G."),
            ("--max-flops", "Most FLOPs, e.g. 9G."),
            ("--max-weight-bytes", "Most weight bytes, e.g. 20MB or 16MiB."),
            ("--max-peak-activation-bytes", "Most activation bytes alive at once, e.g. 8MiB."),
            ("--max-growth", "Most growth over the baseline, e.g. 5%."))):
        fn = click.option(flag, default=None, metavar="N", help=help_text)(fn)
    fn = click.option("--min-netscore", type=float, default=None, help="Least NetScore (a in %, p in M, m in G).")(fn)
    fn = click.option("--device", default=None, metavar="NAME|FILE.toml",
                      help="The device profile of max_latency_ms: a built-in name or a TOML file "
                           "(not 'local': a budget must not depend on the machine).")(fn)
    fn = click.option("--max-latency-ms", type=float, default=None, metavar="MS",
                      help="Most estimated latency on --device, in milliseconds (roofline, deterministic).")(fn)
    fn = click.option("--disallow-op", "disallow_ops", multiple=True, metavar="OP",
                      help="An op type the model must not use (repeatable).")(fn)
    fn = click.option("--allow-unsupported", is_flag=True, default=None,
                      help="Accept ops without a cost rule (totals are then lower bounds).")(fn)
    return fn


@main.command("check")
@click.argument("models", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="The config file (default: the nearest pyproject.toml with [tool.onnxscore], "
                   "or .onnxscore.toml, walking up from here).")
@shape_options
@click.option("--accuracy", type=float, default=None, metavar="PERCENT",
              help="Top-1 accuracy in % for min_netscore.")
@_limit_options
@click.option("--baseline", "baseline_path", type=click.Path(dir_okay=False), default=None,
              help="The baseline file (default: the config's, onnxscore-baseline.json beside it).")
@click.option("--update-baseline", is_flag=True, help="Write the current figures to the baseline and exit 0.")
@click.option("--no-cache", is_flag=True, help="Analyze every model, ignoring the result cache.")
@click.option("--format", "fmt", type=click.Choice(["text", "md", "json"]), default="text", show_default=True)
@_guard
def check_command(models, config_path, dims, input_shapes, values, accuracy, max_params, max_macs, max_flops,
                  max_weight_bytes, max_peak_activation_bytes, max_growth, min_netscore, max_latency_ms, device,
                  disallow_ops, allow_unsupported, baseline_path, update_baseline, no_cache, fmt) -> None:
    """Check MODELS against their budgets: exit 0 within, 1 over, 2 on unusable input.

    With no MODELS, every *.onnx under the config's folder is checked. Budgets come from
    [tool.onnxscore] in pyproject.toml (or .onnxscore.toml) and the flags below.

    \b
    Example:
      onnxscore check models/*.onnx --max-macs 4.5G --max-weight-bytes 20MB
      onnxscore check models/mobile.onnx --max-latency-ms 25 --device raspberry-pi-5
      onnxscore check --update-baseline
    """
    from dataclasses import replace

    from onnxscore.budget import budget_values, check, discover, load_config
    from onnxscore.render.budget import render_check

    config = load_config(config_path)
    if baseline_path:
        config = replace(config, baseline=os.path.abspath(baseline_path))
    raw = {"max_params": max_params, "max_macs": max_macs, "max_flops": max_flops,
           "max_weight_bytes": max_weight_bytes, "max_peak_activation_bytes": max_peak_activation_bytes,
           "min_netscore": min_netscore, "accuracy": accuracy, "allow_unsupported": allow_unsupported,
           "max_growth": max_growth, "disallow_ops": list(disallow_ops) or None,
           "max_latency_ms": max_latency_ms, "device": device}
    overrides = budget_values({k: v for k, v in raw.items() if v is not None}, "command line")
    paths = list(models) or discover(config.root)
    cache = None
    if not no_cache:
        from onnxscore.cache import Cache
        cache = Cache(config.cache)
    try:
        result = check(paths, config, overrides, parse_dims(dims), parse_input_shapes(input_shapes),
                       cache, update_baseline, parse_values(values))
    finally:
        if cache is not None:
            cache.close()
    for line in result.errors:
        _fail(line)
    for path, e in result.internal:
        _internal(f"while checking {path}", e)
    click.echo(render_check(result, fmt), nl=False)
    if result.internal:
        sys.exit(EXIT_INTERNAL)
    if result.errors:
        sys.exit(EXIT_BAD_INPUT)
    sys.exit(EXIT_STRICT if result.over_budget else EXIT_OK)


def check_main(argv: Optional[List[str]] = None) -> int:
    """``onnxscore check`` as a function returning its exit status (for hooks and scripts)."""
    try:
        main.main(["check", *(argv if argv is not None else sys.argv[1:])], standalone_mode=False)
    except SystemExit as e:
        return int(e.code or 0)
    except click.ClickException as e:
        e.show()
        return EXIT_BAD_INPUT
    return EXIT_OK


@main.command("ops")
@click.option("--domain", default=None, help="Only this domain ('' or ai.onnx for the default).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def ops_command(domain: Optional[str], fmt: str) -> None:
    """List every op with a cost rule, its kind, and whether it costs zero by declaration.

    \b
    Example:
      onnxscore ops --domain ai.onnx.ml
    """
    from onnxscore.ops import all_rules
    from onnxscore.ops.registry import normalize_domain

    rules = [r for r in all_rules() if domain is None or r.domain == normalize_domain(domain)]
    if fmt == "json":
        click.echo(json.dumps([{"domain": r.domain or "ai.onnx", "op_type": r.op_type, "kind": r.kind,
                                "zero_cost": r.zero_cost, "doc": r.doc.splitlines()[0] if r.doc else ""}
                               for r in rules], indent=2))
        return
    for r in rules:
        first = r.doc.splitlines()[0] if r.doc else ""
        click.echo(f"{r.domain or 'ai.onnx':<12} {r.op_type:<34} {r.kind:<13} "
                   f"{'zero' if r.zero_cost else 'rule':<5} {first}")
    click.echo(f"{len(rules)} ops")


RANK_BY = ("netscore", "top1", "info_density", "params", "macs", "flops", "weight_bytes", "est_latency", "latency")
RANK_MEASURE_HELP = ("Also run each model in onnxruntime on the CPU (pip install 'onnxscore[measure]'): its "
                     "p50 and p90 latency in every format, a Pareto front and a figure of top-1 against it. "
                     "The models are measured one after the other in this process once every analysis is "
                     "done; measured times are never cached. A model onnxruntime cannot run keeps its row, "
                     "without a latency (exit 2).")


def accuracy_table_options(fn):
    """--accuracy FILE (a table of top-1 per model) and its column names."""
    fn = click.option("--accuracy-column", default="top1", show_default=True,
                      help="The accuracy table's column (or key) of top-1 in %.")(fn)
    fn = click.option("--name-column", default="model", show_default=True,
                      help="The accuracy table's column (or key) of the model name or path.")(fn)
    fn = click.option("--accuracy", "accuracy_file", type=click.Path(dir_okay=False), default=None,
                      metavar="FILE",
                      help="CSV or JSON table of top-1 accuracy in % per model (timm's "
                           "results-imagenet.csv as it is), matched by path, then by file stem "
                           "(default: each model's 'onnxscore.accuracy' metadata).")(fn)
    return fn


def _progress_bar():
    """A rich progress bar on stderr when it is a terminal, else None (piped, in tests), and a
    ``track(label)`` that adds a row to it and returns its ``update(done, total)`` (analyzing,
    then measuring). It is redrawn as models finish (at most ten times a second, as rich's
    refresh thread would), by this thread: no refresh thread, so that the study's pool may
    start its workers as copies of this process (see onnxscore.study._pool_context)."""
    if not sys.stderr.isatty():
        return None, None
    import time

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=True, auto_refresh=False)
    drawn = [-1.0]  # when last drawn

    def track(label: str):
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)
            if time.monotonic() - drawn[0] >= 0.1 or done == total:
                bar.refresh()
                drawn[0] = time.monotonic()

        return update

    return bar, track


@main.command("rank")
@click.argument("models", nargs=-1, required=True, type=click.Path(dir_okay=True))
@accuracy_table_options
@click.option("--by", type=click.Choice(RANK_BY), default="netscore", show_default=True,
              help="Order of the leaderboard: a metric (highest first) or a cost (smallest first); "
                   "est_latency (fastest first) needs --device, latency (measured, fastest first) "
                   "--measure.")
@click.option("--device", default=None, metavar="NAME|FILE.toml",
              help="Also estimate each model's latency on a device (the roofline estimate of `check "
                   "--max-latency-ms`): a built-in profile (raspberry-pi-5, jetson-orin-nano-8gb, "
                   "jetson-agx-orin-64gb), 'local' (this machine, calibrated once) or a TOML profile "
                   "file. Estimates depend on the profile's numbers; they are not measurements.")
@click.option("-j", "--jobs", type=click.IntRange(1), default=None,
              help="Local processes analyzing at once (default: the machine's cores).")
@click.option("--scheduler", default=None, metavar="ADDR",
              help="Analyze on a Dask cluster: tcp://HOST:8786, or local:N to start N local "
                   "workers (pip install onnxscore[dask]).")
@shape_options
@exponent_options
@format_option
@click.option("--html", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Also write a self-contained HTML page (sortable leaderboard and figures).")
@click.option("--plot", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Also write the figures as a PNG image (needs matplotlib).")
@output_option
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              help="Folder of the result cache shared with `check` (default: the config's `cache` "
                   "([tool.onnxscore] in pyproject.toml, or .onnxscore.toml), else $ONNXSCORE_CACHE_DIR, "
                   "else ~/.cache/onnxscore).")
@click.option("--no-cache", is_flag=True, help="Analyze every model, ignoring the result cache.")
@functools.partial(measure_options, measure_help=RANK_MEASURE_HELP)
@_guard
def rank_command(models, accuracy_file, name_column, accuracy_column, by, device, jobs, scheduler, dims,
                 input_shapes, values, alpha, beta, gamma, fmt, html, plot, output, cache_dir, no_cache,
                 measure_on, runs, warmup, threads) -> None:
    """Rank MODELS (ONNX files, or folders searched for *.onnx) by NetScore, top-1 and
    information density: the leaderboard, Pareto fronts and rank correlations of the NetScore
    paper's study. Exit 2 when a model could not be analyzed or (with --measure) measured,
    after the whole study; 130 when interrupted (Ctrl-C): the models finished are in the cache,
    and the same command goes on from there.

    \b
    Example:
      onnxscore rank zoo/ --accuracy results-imagenet.csv
      onnxscore rank zoo/ --accuracy top1.json --by info_density --format md -o leaderboard.md
      onnxscore rank zoo/ --jobs 8 --html study.html --plot study.png
      onnxscore rank zoo/ --scheduler tcp://scheduler:8786 --format json -o study.json
      onnxscore rank zoo/ --accuracy top1.csv --device raspberry-pi-5 --by est_latency --html study.html
      onnxscore rank zoo/ --accuracy top1.csv --measure --runs 50 --threads 1 --by latency
    """
    if cache_dir and no_cache:
        raise UsageError("--cache-dir and --no-cache: choose one")
    if by == "est_latency" and device is None:
        raise UsageError("--by est_latency sorts by the estimated latency on a device: give --device NAME|FILE.toml")
    if by == "latency" and not measure_on:
        raise UsageError("--by latency sorts by the latency measured with onnxruntime: give --measure")
    _needs_onnxruntime(measure_on)
    measuring = {"measure": measure_on, "runs": runs, "warmup": warmup, "threads": threads} if measure_on else {}
    done = [0, 0]  # models finished (cache hits included), of how many
    try:
        status = _rank(models, accuracy_file, name_column, accuracy_column, by, jobs, scheduler, dims,
                       input_shapes, values, alpha, beta, gamma, fmt, html, plot, output, cache_dir, no_cache,
                       done, device, measuring)
    except KeyboardInterrupt:  # said below, once the interrupt and what it held (a pool) are gone
        status = EXIT_INTERRUPTED
    if status == EXIT_INTERRUPTED:
        kept = ("nothing kept (--no-cache)" if no_cache else
                "the analyses finished are in the cache: the same command goes on from there")
        click.echo("onnxscore rank: interrupted" + (f", {done[0]} of {done[1]} model(s) done; {kept}"
                                                    if done[1] else ""), err=True)
    if status:
        sys.exit(status)


def _rank(models, accuracy_file, name_column, accuracy_column, by, jobs, scheduler, dims, input_shapes, values,
          alpha, beta, gamma, fmt, html, plot, output, cache_dir, no_cache, done: List[int],
          device: Optional[str] = None, measuring: Optional[dict] = None) -> int:
    """The work of ``rank``: the study, rendered; its exit status. ``done`` follows the
    progress: models finished (cache hits included) and how many there are. ``measuring``:
    the measure arguments of :func:`onnxscore.study.rank` (empty: not measured)."""
    from onnxscore.render.study import not_measured, render_study, summary_line
    from onnxscore.study import load_accuracies, rank

    accuracies = load_accuracies(accuracy_file, name_column, accuracy_column) if accuracy_file else None
    cache = None
    if not no_cache:
        from onnxscore.cache import Cache
        from onnxscore.config import configured_cache

        cache = Cache(cache_dir or configured_cache())  # check's cache: the config's, else the default
    if device is not None:
        from onnxscore.device import load_device
        try:
            profile = load_device(device, cache=cache)  # local: calibrated once, kept in the cache
        except BaseException:
            if cache is not None:
                cache.close()
            raise
    else:
        profile = None
    bar, track = _progress_bar()
    update = track("analyzing") if track is not None else None
    measuring_update = []  # the "measuring" row, added when the measurements begin

    def progress(n: int, total: int) -> None:
        done[:] = [n, total]
        if update is not None:
            update(n, total)

    def measured(n: int, total: int) -> None:
        if track is not None:
            if not measuring_update:
                measuring_update.append(track("measuring"))
            measuring_update[0](n, total)

    try:
        if bar is not None:
            bar.start()
        study = rank(models, accuracies, by=by, dims=parse_dims(dims), input_shapes=parse_input_shapes(input_shapes),
                     values=parse_values(values), alpha=alpha, beta=beta, gamma=gamma, jobs=jobs,
                     scheduler=scheduler, cache=cache, progress=progress, device=profile, measured=measured,
                     **(measuring or {}))
    finally:
        if bar is not None:
            bar.stop()
        if cache is not None:
            cache.close()
    data = study.to_dict()
    _emit(render_study(data, fmt, width=terminal_width(output)), output)
    if fmt != "text" or output:  # the text report has these lines; elsewhere stderr does
        for row in study.failed:
            _fail(row.error)
        for row in not_measured(data):
            _fail(row["latency_error"])
        click.echo(f"onnxscore rank: {summary_line(data)}", err=True)
    if html:
        from onnxscore.render.study_figures import to_html
        _emit(to_html(data), html)
    if plot:
        from onnxscore.render.study_figures import plot_png
        with _writing(plot):
            plot_png(data, plot)
    if any(row.internal for row in study.failed):
        return EXIT_INTERNAL
    return EXIT_BAD_INPUT if study.failed or not_measured(data) else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    main()


def run() -> None:
    """The ``onnxscore`` command: :func:`main`, then a quick exit. A large model leaves millions
    of objects that the interpreter would free one by one on the way out (seconds at 200,000
    nodes); the output is flushed and the process ends without that. The garbage collector
    stays off to the end (see :func:`main`)."""
    gc.disable()
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)
