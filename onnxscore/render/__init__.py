"""Report -> text, JSON, CSV, Markdown (and HTML, PNG). Units and rounding exist only here.

The terminal renderer (rich) is imported only when text is asked for, so machine formats
start faster.
"""
from onnxscore.render.tables import to_csv, to_json, to_json_bytes, to_markdown

FORMATS = ("text", "json", "csv", "md")


def to_text(reports, **options) -> str:
    """The terminal report; see :func:`onnxscore.render.text.to_text`."""
    from onnxscore.render import text

    return text.to_text(reports, **options)


def render(reports, fmt: str = "text", **options) -> str:
    """Render a list of reports in one of :data:`FORMATS`; options: top, depth, layers,
    all_layers, width, sweeps, explain, estimates, measurements (one Estimate / Measurement or
    None per report)."""
    return {"json": to_json, "csv": to_csv, "md": to_markdown, "text": to_text}[fmt](reports, **options)


def render_bytes(reports, fmt: str = "text", **options) -> bytes:
    """:func:`render` as UTF-8, as a file holds it; JSON as its encoder writes it (not decoded
    to text and encoded back: 100 MB for a 200,000-layer report)."""
    if fmt == "json":
        return to_json_bytes(reports, **options)
    return render(reports, fmt, **options).encode()


__all__ = ["render", "render_bytes", "to_text", "to_json", "to_json_bytes", "to_csv", "to_markdown", "FORMATS"]
