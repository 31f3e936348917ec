"""``python -m onnxscore`` and the ``onnxscore`` command. A Ctrl-C while the command is still
being imported ends it as one at any later moment does: one line, exit 130, no traceback."""
import sys


def main() -> None:
    try:
        from onnxscore.cli import run
    except KeyboardInterrupt:
        sys.stderr.write("onnxscore: interrupted\n")
        sys.exit(130)  # (cli.EXIT_INTERRUPTED, not imported yet)
    run()


if __name__ == "__main__":
    main()
