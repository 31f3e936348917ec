"""A result cache for ``onnxscore check``: an unchanged model costs a hash and a lookup.

Results are keyed by the SHA-256 of the model file, the analyzer version and the options that
change the analysis (dims, input shapes). Weights are never part of an analysis, so the external
data file is not hashed. The store is one SQLite file in WAL mode with a busy timeout, so
concurrent ``check`` runs (pre-commit on several files, parallel CI jobs) read and write it
safely; the default location is ``$XDG_CACHE_HOME/onnxscore`` (``~/.cache/onnxscore``),
``ONNXSCORE_CACHE_DIR`` or the config's ``cache`` key moves it.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from typing import Any, Mapping, Optional

from onnxscore import __version__

SCHEMA = 1


def default_dir() -> str:
    if os.environ.get("ONNXSCORE_CACHE_DIR"):
        return os.environ["ONNXSCORE_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "onnxscore")


def file_digest(path: str, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def cache_key(digest: str, options: Mapping[str, Any]) -> str:
    """The key of one analysis: file digest, analyzer version and options, as one string."""
    return json.dumps({"sha256": digest, "version": __version__, "schema": SCHEMA,
                       "options": options}, sort_keys=True)


class Cache:
    """``get(key)`` / ``put(key, value)`` of JSON values in one SQLite file."""

    def __init__(self, folder: Optional[str] = None, timeout: float = 60.0):
        self.folder = folder or default_dir()
        os.makedirs(self.folder, exist_ok=True)
        self.path = os.path.join(self.folder, "results.sqlite")
        self.db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        self.db.execute("PRAGMA busy_timeout = %d" % int(timeout * 1000))
        self._retry(lambda: self.db.execute("PRAGMA journal_mode = WAL"))
        # a commit without fsync: in WAL mode the file stays consistent through a crash of any
        # process; a power cut may lose the last results, which a cache can afford (a study
        # writes a row a model: an fsync each cost a millisecond a model)
        self.db.execute("PRAGMA synchronous = NORMAL")
        self._retry(lambda: self.db.execute(
            "CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, value TEXT NOT NULL, "
            "created REAL NOT NULL)"))

    @staticmethod
    def _retry(fn, attempts: int = 50):
        for i in range(attempts):
            try:
                return fn()
            except sqlite3.OperationalError as e:  # "database is locked" while another run writes
                if "locked" not in str(e) or i == attempts - 1:
                    raise
                time.sleep(0.05 * (i + 1))

    def get(self, key: str) -> Optional[Any]:
        row = self._retry(lambda: self.db.execute("SELECT value FROM results WHERE key = ?", (key,)).fetchone())
        if row is None:
            return None
        try:
            return json.loads(row[0])
        except ValueError:
            return None

    def put(self, key: str, value: Any) -> None:
        text = json.dumps(value, sort_keys=True)
        self._retry(lambda: self.db.execute(
            "INSERT OR REPLACE INTO results (key, value, created) VALUES (?, ?, ?)",
            (key, text, time.time())))

    def close(self) -> None:
        self.db.close()
