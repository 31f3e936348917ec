"""Report -> text, JSON, CSV, Markdown (and HTML, PNG). Units and rounding exist only here.

The renderers are imported when a format is asked for: the terminal's (rich) only for text, and
none by a command that renders no report (a fully cached ``rank`` imports neither the tables nor
the report's classes), so commands start faster.
"""
FORMATS = ("text", "json", "csv", "md")
# Rows of a long table (layers, blocks) in the text, Markdown and HTML reports: the first ones, in
# graph order, then a note. A 200,000-node graph prints its summary, not 200,000 lines (rich draws
# about 1,000 rows a second; a browser sorts such a table slowly); 0 shows every row. CSV and JSON
# list every layer and block.
MAX_ROWS = 1000
_TABLES = ("to_csv", "to_json", "to_json_bytes", "to_markdown")


def __getattr__(name: str):
    """The renderers of :mod:`onnxscore.render.tables`, imported at first use."""
    if name in _TABLES:
        from onnxscore.render import tables

        return getattr(tables, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def to_text(reports, **options) -> str:
    """The terminal report; see :func:`onnxscore.render.text.to_text`."""
    from onnxscore.render import text

    return text.to_text(reports, **options)


def render(reports, fmt: str = "text", **options) -> str:
    """Render a list of reports in one of :data:`FORMATS`; options: top, depth, layers,
    all_layers, width, sweeps, explain, estimates, measurements (one Estimate / Measurement or
    None per report)."""
    from onnxscore.render import tables

    return {"json": tables.to_json, "csv": tables.to_csv, "md": tables.to_markdown,
            "text": to_text}[fmt](reports, **options)


def render_bytes(reports, fmt: str = "text", **options) -> bytes:
    """:func:`render` as UTF-8, as a file holds it; JSON as its encoder writes it (not decoded
    to text and encoded back: 100 MB for a 200,000-layer report)."""
    if fmt == "json":
        from onnxscore.render.tables import to_json_bytes

        return to_json_bytes(reports, **options)
    from onnxscore.render.units import utf8

    return utf8(render(reports, fmt, **options))  # (a model's path that is not UTF-8, as \\xff)


__all__ = ["render", "render_bytes", "to_text", "to_json", "to_json_bytes", "to_csv", "to_markdown", "FORMATS",
           "MAX_ROWS"]
