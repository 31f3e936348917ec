"""Report -> text, JSON, CSV and Markdown. Units and rounding exist only here."""
from onnxscore.render.tables import to_csv, to_json, to_markdown
from onnxscore.render.text import to_text

FORMATS = ("text", "json", "csv", "md")


def render(reports, fmt: str = "text", **options) -> str:
    """Render a list of reports in one of :data:`FORMATS`."""
    if fmt == "json":
        return to_json(reports)
    if fmt == "csv":
        return to_csv(reports)
    if fmt == "md":
        return to_markdown(reports, **options)
    return to_text(reports, **options)


__all__ = ["render", "to_text", "to_json", "to_csv", "to_markdown", "FORMATS"]
