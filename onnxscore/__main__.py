"""``python -m onnxscore``."""
from onnxscore.cli import main

main()
