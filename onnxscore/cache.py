"""A result cache for ``onnxscore check``: an unchanged model costs a hash and a lookup.

Results are keyed by the SHA-256 of the model file, the analyzer version and the options that
change the analysis (dims, input shapes). Weights are never part of an analysis, so the external
data file is not hashed. The store is one SQLite file in WAL mode with a busy timeout, so
concurrent ``check`` runs (pre-commit on several files, parallel CI jobs) read and write it
safely; the default location is ``$XDG_CACHE_HOME/onnxscore`` (``~/.cache/onnxscore``),
``ONNXSCORE_CACHE_DIR`` or the config's ``cache`` key moves it.

A file's digest is remembered with its ``stat`` (device, inode, size, modification and change
times in nanoseconds), as git's index does: a file whose stat is unchanged is not read again, so
an unchanged zoo of large models costs a ``stat`` a file. Any write moves the change time (which
no program can set back); a file written less than :data:`RACY_SECONDS` before it was hashed
could be written again within the clock's granularity without moving it, so its digest is not
remembered until it is older.

A cache hit needs nothing of the analyzer: this module imports neither onnx nor the walker, so
a study or a check whose every model is a hit never loads them.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import time
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence

from onnxscore import __version__
from onnxscore.errors import OnnxScoreError
from onnxscore.files import open_regular

SCHEMA = 1

# Keys a ``get_many`` query asks for at once: below SQLite's oldest limit of bound variables (999).
KEYS_PER_QUERY = 500
# A file changed this recently when hashed has its digest computed again next time (see above).
RACY_SECONDS = 2.0


class CacheError(OnnxScoreError):
    """The result cache's folder or file cannot be used (said in one line)."""


def default_dir() -> str:
    if os.environ.get("ONNXSCORE_CACHE_DIR"):
        return os.environ["ONNXSCORE_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "onnxscore")


def file_digest(path: str, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, read in chunks (unbuffered: a small model is one read); a regular
    file only (:func:`onnxscore.files.open_regular`: OSError otherwise)."""
    h = hashlib.sha256()
    fd, _ = open_regular(path)
    try:
        while True:
            block = os.read(fd, chunk)
            if not block:
                return h.hexdigest()
            h.update(block)
    finally:
        os.close(fd)


def cache_key(digest: str, options: Mapping[str, Any]) -> str:
    """The key of one analysis: file digest, analyzer version and options, as one string."""
    return key_maker(options)(digest)


def key_maker(options: Mapping[str, Any]) -> Callable[[str], str]:
    """``digest -> cache_key(digest, options)``, the options serialized once: the very string of
    ``json.dumps({"sha256": digest, "version": __version__, "schema": SCHEMA, "options": options},
    sort_keys=True)``, whose keys sort as options, schema, sha256, version."""
    head = json.dumps({"options": options, "schema": SCHEMA}, sort_keys=True)[:-1] + ', "sha256": '
    tail = ', "version": ' + json.dumps(__version__) + "}"
    return lambda digest: head + json.dumps(digest) + tail


def figures_options(dims: Mapping[str, int], input_shapes: Mapping[str, Sequence[int]],
                    values: Optional[Mapping[str, Any]] = None, device=None) -> Dict[str, Any]:
    """The options in the key of a model's figures: dims, input shapes, values and, with
    ``device``, its whole profile (an edited profile is a new key, never a stale estimate)."""
    options = {"dims": dict(sorted(dims.items())),
               "inputs": {k: list(v) for k, v in sorted(input_shapes.items())},
               "values": dict(sorted((values or {}).items()))}
    if device is not None:
        options["device"] = device.to_dict()
    return options


def figures_key(path: str, dims: Mapping[str, int], input_shapes: Mapping[str, Sequence[int]],
                values: Optional[Mapping[str, Any]] = None, device=None,
                cache: Optional["Cache"] = None) -> Optional[str]:
    """The key under which a model's figures are cached, by ``check`` and ``rank`` alike: the
    file's digest and :func:`figures_options`. None when the file cannot be read (its analysis
    will say why). ``cache``: see :func:`figures_keys`."""
    return figures_keys([path], dims, input_shapes, values, device, cache)[0]


def figures_keys(paths: Sequence[str], dims: Mapping[str, int], input_shapes: Mapping[str, Sequence[int]],
                 values: Optional[Mapping[str, Any]] = None, device=None,
                 cache: Optional["Cache"] = None) -> List[Optional[str]]:
    """:func:`figures_key` of each path, the options serialized once; with ``cache``, the
    digests of files unchanged since it last hashed them are its (see :meth:`Cache.digests`)."""
    key = key_maker(figures_options(dims, input_shapes, values, device))
    digests = cache.digests(paths) if cache is not None else [_digest_or_none(p) for p in paths]
    return [None if d is None else key(d) for d in digests]


def _digest_or_none(path: str) -> Optional[str]:
    try:
        return file_digest(path)
    except OSError:
        return None


_FIGURE_FIELDS = {"params", "macs", "flops", "weight_bytes", "complete"}


def usable_hit(hit: Any, device=None) -> bool:
    """Whether a cached value holds figures (with ``device``, an estimate on it too)."""
    return (isinstance(hit, dict) and _FIGURE_FIELDS <= hit.keys()
            and (device is None or hit.get("latency_device") is not None))


def _loads(text: str) -> Optional[Any]:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _stamp(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


class Cache:
    """``get(key)`` / ``put(key, value)`` of JSON values in one SQLite file."""

    def __init__(self, folder: Optional[str] = None, timeout: float = 60.0):
        """Open (or create) the cache in ``folder``. :class:`CacheError`, one line, when it
        cannot be: the folder cannot be made, or its file is not a SQLite database."""
        self.folder = folder or default_dir()
        self.path = os.path.join(self.folder, "results.sqlite")
        try:
            os.makedirs(self.folder, exist_ok=True)
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
        except (OSError, sqlite3.DatabaseError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise CacheError(f"{self.folder}: cannot open the result cache ({reason}); --no-cache goes "
                             "without it") from None
        try:  # the digests remembered are a shortcut: a cache that cannot hold them still serves
            self._retry(lambda: self.db.execute(
                "CREATE TABLE IF NOT EXISTS digests (path BLOB PRIMARY KEY, stamp TEXT NOT NULL, "
                "sha256 TEXT NOT NULL)"))
            self._remember = True
        except sqlite3.OperationalError:  # (a read-only database made by an older onnxscore)
            self._remember = False

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
        return None if row is None else _loads(row[0])

    def get_many(self, keys: Sequence[str]) -> Dict[str, Any]:
        """``get`` of many keys, in a few queries rather than one a key: key -> value, for
        the keys found."""
        found: Dict[str, Any] = {}
        for key, text in self._select("SELECT key, value FROM results WHERE key IN (%s)", keys):
            value = _loads(text)
            if value is not None:
                found[key] = value
        return found

    def _select(self, sql: str, keys: Sequence[str]) -> List[tuple]:
        """The rows of ``sql`` (``... IN (%s)``) for the distinct ``keys``, asked
        :data:`KEYS_PER_QUERY` at a time."""
        rows: List[tuple] = []
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), KEYS_PER_QUERY):
            part = unique[start:start + KEYS_PER_QUERY]
            query = sql % ", ".join("?" * len(part))
            rows += self._retry(lambda: self.db.execute(query, part).fetchall())
        return rows

    def digests(self, paths: Sequence[str]) -> List[Optional[str]]:
        """The SHA-256 of each file (None when it cannot be read): remembered from an earlier
        call while the file's stat is unchanged, else read and hashed (and remembered, unless
        it changed within :data:`RACY_SECONDS`). Files are known by their absolute path, as
        bytes (a file name need not be UTF-8)."""
        cwd = os.getcwd()
        where = [os.fsencode(os.path.normpath(os.path.join(cwd, p))) for p in paths]
        known = {}
        if self._remember:
            known = {path: (stamp, digest) for path, stamp, digest in
                     self._select("SELECT path, stamp, sha256 FROM digests WHERE path IN (%s)", where)}
        out: List[Optional[str]] = []
        learned = []
        recent = (time.time() - RACY_SECONDS) * 1e9
        for path, full in zip(paths, where):
            try:
                st = os.stat(path)
            except OSError:
                out.append(None)
                continue
            stamp = _stamp(st)
            memo = known.get(full)
            if memo is not None and memo[0] == stamp:
                out.append(memo[1])
                continue
            digest = _digest_or_none(path)
            out.append(digest)
            if digest is not None:
                known[full] = (stamp, digest)  # (a path given twice is hashed once)
                if max(st.st_mtime_ns, st.st_ctime_ns) < recent:
                    learned.append((full, stamp, digest))
        if learned and self._remember:
            try:
                with self.batch():  # one commit
                    self.db.executemany("INSERT OR REPLACE INTO digests (path, stamp, sha256) VALUES (?, ?, ?)",
                                        learned)
            except sqlite3.OperationalError:  # read-only: hashed again next time
                self._remember = False
        return out

    def put(self, key: str, value: Any) -> None:
        text = json.dumps(value, sort_keys=True)
        self._retry(lambda: self.db.execute(
            "INSERT OR REPLACE INTO results (key, value, created) VALUES (?, ?, ?)",
            (key, text, time.time())))

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """The puts made meanwhile in one transaction: one commit for them all, not one a put
        (about 0.05 ms each). It is committed however the block ends: what was put is kept, as
        it would have been one by one. Hold it while recording results, not while computing
        them: it keeps other writers waiting."""
        self._retry(lambda: self.db.execute("BEGIN"))
        try:
            yield
        finally:
            if self.db.in_transaction:
                self._retry(lambda: self.db.execute("COMMIT"))

    def close(self) -> None:
        self.db.close()
