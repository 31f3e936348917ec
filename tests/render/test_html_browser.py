"""The HTML report opened by a real browser from a file:// URL, with the network disabled."""
import os
import shutil
import subprocess
import tempfile

import pytest

import onnxscore
from onnxscore.render.html import to_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (apt-get install chromium)")
def test_chromium_renders_charts_and_tables(light_dir, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(to_html([onnxscore.analyze(os.path.join(light_dir, "light_resnet50.onnx"), accuracy=76.1)]))
    profile = tempfile.mkdtemp()
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    shutil.rmtree(profile, ignore_errors=True)
    for element in ('id="chart-top-layers"', 'id="chart-blocks"', 'id="chart-depth"', 'id="table-top-layers"',
                    'id="table-blocks"', 'id="table-op-types"', 'id="table-layers"'):
        assert element in dom, element
    assert dom.count("<rect") > 50 and "res5" in dom
