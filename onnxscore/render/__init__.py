"""Report -> text, JSON, CSV, Markdown (and HTML, PNG). Units and rounding exist only here."""
from onnxscore.render.tables import to_csv, to_json, to_markdown
from onnxscore.render.text import to_text

FORMATS = ("text", "json", "csv", "md")


def render(reports, fmt: str = "text", **options) -> str:
    """Render a list of reports in one of :data:`FORMATS`; options: top, depth, layers,
    all_layers, width."""
    return {"json": to_json, "csv": to_csv, "md": to_markdown, "text": to_text}[fmt](reports, **options)


__all__ = ["render", "to_text", "to_json", "to_csv", "to_markdown", "FORMATS"]
