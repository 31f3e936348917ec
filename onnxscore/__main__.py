"""``python -m onnxscore``."""
from onnxscore.cli import run

run()
