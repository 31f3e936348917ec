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
