"""Errors raised by onnxscore; the CLI turns each into one line and exit status 2."""


class OnnxScoreError(Exception):
    """Base class of every error onnxscore raises on purpose."""


class ModelLoadError(OnnxScoreError):
    """The file is missing, not ONNX, truncated, or structurally unusable."""


class GraphError(OnnxScoreError):
    """The graph is malformed: a cycle, a tensor produced twice, absurd dimensions."""


class UsageError(OnnxScoreError):
    """Options that do not fit the model (an unknown input name, a malformed --dim)."""
