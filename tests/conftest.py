import glob
import os

import onnx
import pytest

LIGHT_DIR = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


@pytest.fixture(scope="session")
def light_dir():
    if not glob.glob(os.path.join(LIGHT_DIR, "*.onnx")):
        pytest.skip(reason=f"the installed onnx wheel ships no light models in {LIGHT_DIR}")
    return LIGHT_DIR


@pytest.fixture(autouse=True)
def _no_columns(monkeypatch):
    """Text reports are laid out at ``COLUMNS`` when it is set: a shell that exports it must not
    change what the tests read (a test that wants it sets it)."""
    monkeypatch.delenv("COLUMNS", raising=False)


def pytest_addoption(parser):
    parser.addoption("--update-goldens", action="store_true",
                     help="rewrite the golden files of tests/render/test_golden.py from the current output")


@pytest.fixture
def golden(request):
    """compare(name, text): the text must equal tests/golden/<name> (rewritten with --update-goldens)."""
    folder = os.path.join(os.path.dirname(__file__), "golden")

    def check(name, text):
        path = os.path.join(folder, name)
        if request.config.getoption("--update-goldens"):
            os.makedirs(folder, exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        if not os.path.exists(path):
            pytest.fail(f"no golden file {path}; run pytest --update-goldens once and review it")
        with open(path, encoding="utf-8") as f:
            assert text == f.read(), f"{name} differs from its golden file (pytest --update-goldens to accept)"

    return check
