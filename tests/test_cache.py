"""onnxscore.cache: keys made many at a time are the keys made one at a time, reads of many keys,
puts in one transaction that keep what was put however the block ends, and digests remembered
only while a file is unchanged."""
import hashlib
import json
import os
import sqlite3

import pytest

from onnxscore import __version__
from onnxscore import cache as C
from onnxscore.cache import Cache


class Profile:
    """Stands for onnxscore.device.Device: the key holds its ``to_dict()``."""

    def to_dict(self):
        return {"name": "board-é", "peak_gflops": 12.5, "bandwidth_gbps": [4, 8], "notes": None}


@pytest.mark.parametrize("options", [
    {},
    {"dims": {}, "inputs": {}, "values": {}},
    {"dims": {"seq": 128, "batch": 1}, "inputs": {"x": [1, 3, 224, 224]}, "values": {"sr": [16000]}},
    {"dims": {"b": 1}, "inputs": {}, "values": {}, "device": Profile().to_dict()},
    {"z": "\"quoted\" \\ and ünïcode", "a": [None, True, 1.5, {"y": 2, "x": 1}]},
])
def test_key_maker_is_the_one_json_dumps_of_the_whole_key(options):
    digest = hashlib.sha256(b"model").hexdigest()
    whole = json.dumps({"sha256": digest, "version": __version__, "schema": C.SCHEMA, "options": options},
                       sort_keys=True)
    assert C.key_maker(options)(digest) == whole == C.cache_key(digest, options)


def test_figures_keys_are_figures_key_of_each_file(tmp_path):
    paths = []
    for name, body in (("a.onnx", b"a" * 10), ("b.onnx", b"b" * (3 << 20)), ("empty.onnx", b"")):  # b: 3 reads
        (tmp_path / name).write_bytes(body)
        paths.append(str(tmp_path / name))
    paths.append(str(tmp_path / "missing.onnx"))
    args = ({"batch": 2}, {"x": (2, 8)}, {"sr": 16000}, Profile())
    keys = C.figures_keys(paths, *args)
    assert keys == [C.figures_key(p, *args) for p in paths]
    assert keys[3] is None  # unreadable: its analysis says why
    assert json.loads(keys[1])["sha256"] == hashlib.sha256(b"b" * (3 << 20)).hexdigest()
    assert json.loads(keys[2])["sha256"] == hashlib.sha256(b"").hexdigest()
    assert json.loads(keys[0])["options"] == {"dims": {"batch": 2}, "inputs": {"x": [2, 8]},
                                              "values": {"sr": 16000}, "device": Profile().to_dict()}


def test_get_many_finds_what_get_finds(tmp_path):
    c = Cache(str(tmp_path))
    n = C.KEYS_PER_QUERY * 2 + 7  # three queries
    for i in range(0, n, 2):  # every other key stored
        c.put(f"k{i}", {"i": i})
    c.db.execute("INSERT INTO results (key, value, created) VALUES ('bad', 'not json', 0)")
    asked = [f"k{i}" for i in range(n)] + ["k0", "bad", "absent"]  # a key twice, one unreadable, one absent
    found = c.get_many(asked)
    assert found == {k: c.get(k) for k in asked if c.get(k) is not None}
    assert len(found) == (n + 1) // 2 and found["k4"] == {"i": 4}
    assert c.get_many([]) == {}


def test_batch_commits_once_and_keeps_what_was_put_when_interrupted(tmp_path):
    c = Cache(str(tmp_path))
    other = sqlite3.connect(str(tmp_path / "results.sqlite"))

    def stored():
        return {k for (k,) in other.execute("SELECT key FROM results")}

    with c.batch():
        c.put("a", 1)
        c.put("b", 2)
        assert stored() == set()  # not committed yet
    assert stored() == {"a", "b"}
    with pytest.raises(KeyboardInterrupt):
        with c.batch():
            c.put("c", 3)
            raise KeyboardInterrupt
    assert stored() == {"a", "b", "c"} and not c.db.in_transaction
    c.put("d", 4)  # back to a commit a put
    assert stored() == {"a", "b", "c", "d"}


def _counting_digest(monkeypatch):
    """Counts the files C.file_digest reads, by path."""
    read = []
    real = C.file_digest

    def digest(path, *args):
        read.append(path)
        return real(path, *args)

    monkeypatch.setattr(C, "file_digest", digest)
    return read


def test_digests_are_remembered_while_the_stat_is_unchanged(tmp_path, monkeypatch):
    monkeypatch.setattr(C, "RACY_SECONDS", -3600.0)  # every file counts as old enough to remember
    read = _counting_digest(monkeypatch)
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    a.write_bytes(b"first")
    b.write_bytes(b"other")
    paths = [str(a), str(b), str(tmp_path / "missing.onnx"), str(a)]  # a given twice
    c = Cache(str(tmp_path / "cache"))
    first = c.digests(paths)
    assert first == [hashlib.sha256(b"first").hexdigest(), hashlib.sha256(b"other").hexdigest(), None,
                     hashlib.sha256(b"first").hexdigest()]
    assert read == [str(a), str(b)]  # the file given twice hashed once
    assert Cache(str(tmp_path / "cache")).digests(paths) == first  # another run: nothing read
    assert read == [str(a), str(b)]
    mtime = a.stat().st_mtime_ns
    a.write_bytes(b"FIRST")  # same size; the modification time set back: the change time moved
    os.utime(a, ns=(mtime, mtime))
    assert a.stat().st_size == 5 and a.stat().st_mtime_ns == mtime
    assert c.digests([str(a)]) == [hashlib.sha256(b"FIRST").hexdigest()]
    assert read == [str(a), str(b), str(a)]
    monkeypatch.chdir(tmp_path)  # a relative path is the same file
    assert c.digests(["b.onnx"]) == [first[1]] and len(read) == 3


def test_a_file_changed_just_now_is_hashed_again(tmp_path, monkeypatch):
    """Within RACY_SECONDS of its last change a file could change again without its stat
    moving (a coarse clock): its digest is not remembered."""
    read = _counting_digest(monkeypatch)
    (tmp_path / "new.onnx").write_bytes(b"fresh")
    c = Cache(str(tmp_path / "cache"))
    for _ in range(2):
        assert c.digests([str(tmp_path / "new.onnx")]) == [hashlib.sha256(b"fresh").hexdigest()]
    assert len(read) == 2
    assert c.db.execute("SELECT COUNT(*) FROM digests").fetchone() == (0,)


def test_figures_keys_with_a_cache_are_the_keys_without(tmp_path, monkeypatch):
    monkeypatch.setattr(C, "RACY_SECONDS", -3600.0)
    paths = []
    for name in ("a.onnx", "b.onnx"):
        (tmp_path / name).write_bytes(name.encode())
        paths.append(str(tmp_path / name))
    args = ({"batch": 2}, {}, None, None)
    c = Cache(str(tmp_path / "cache"))
    assert C.figures_keys(paths, *args, cache=c) == C.figures_keys(paths, *args) \
        == C.figures_keys(paths, *args, cache=c)  # (the second, from what the first remembered)
    assert C.figures_key(paths[0], *args, cache=c) == C.figures_keys(paths, *args)[0]


def test_a_read_only_cache_serves_without_remembering_digests(tmp_path, monkeypatch):
    """A cache made before digests were remembered, opened read-only (a shared or restored
    folder): its results are found, the files hashed each time, no error."""
    monkeypatch.setattr(C, "RACY_SECONDS", -3600.0)
    old = sqlite3.connect(str(tmp_path / "results.sqlite"), isolation_level=None)
    old.execute("PRAGMA journal_mode = WAL")
    old.execute("CREATE TABLE results (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)")
    old.execute("INSERT INTO results VALUES ('k', '{\"a\": 1}', 0)")
    old.close()
    real = sqlite3.connect
    monkeypatch.setattr(C.sqlite3, "connect", lambda path, **kw: real(f"file:{path}?mode=ro", uri=True, **kw))
    read = _counting_digest(monkeypatch)
    (tmp_path / "m.onnx").write_bytes(b"model")
    c = Cache(str(tmp_path))
    assert c.get_many(["k"]) == {"k": {"a": 1}}
    for _ in range(2):
        assert c.digests([str(tmp_path / "m.onnx")]) == [hashlib.sha256(b"model").hexdigest()]
    assert len(read) == 2  # nothing remembered


def test_a_file_name_that_is_not_utf8_is_remembered_by_its_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr(C, "RACY_SECONDS", -3600.0)
    read = _counting_digest(monkeypatch)
    odd = os.fsdecode(os.fsencode(str(tmp_path)) + b"/odd\xff.onnx")  # (Linux: a name is bytes)
    with open(odd, "wb") as f:
        f.write(b"model")
    c = Cache(str(tmp_path / "cache"))
    for _ in range(2):
        assert c.digests([odd]) == [hashlib.sha256(b"model").hexdigest()]
    assert read == [odd]  # hashed once, then remembered
    assert c.db.execute("SELECT path FROM digests").fetchall() == [(os.fsencode(odd),)]


@pytest.mark.parametrize("text, shown, written", [
    ("plain ünïcode", "plain ünïcode", "plain ünïcode"),
    (os.fsdecode(b"odd\xff.onnx"), "odd\\xff.onnx", "odd\\xff.onnx"),  # an undecodable byte of a file name
    ("lone \ud800", "lone \\xed\\xa0\\x80", "lone \\xed\\xa0\\x80"),  # a surrogate no byte made: its UTF-8
    ("a\nb\tc\x1b[31m", "a\\nb\\tc\\x1b[31m", "a\nb\tc\x1b[31m"),  # one line; a document keeps its lines
])
def test_printable_names_and_utf8_documents(text, shown, written):
    from onnxscore.render.units import printable, utf8

    assert printable(text) == shown and utf8(text) == written.encode()


def test_a_cache_that_cannot_be_opened_is_one_line(tmp_path):
    (tmp_path / "afile").write_text("")
    with pytest.raises(C.CacheError, match=r"afile/sub: cannot open the result cache \(Not a directory\)"):
        Cache(str(tmp_path / "afile" / "sub"))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "results.sqlite").write_bytes(b"not a SQLite database, only text " * 4)
    with pytest.raises(C.CacheError, match=r"broken: cannot open the result cache \(file is not a database\); "
                                           r"--no-cache goes without it"):
        Cache(str(tmp_path / "broken"))
