"""Opening a model file: a regular file only. A FIFO, a device or a socket named ``*.onnx``
would block the read (a FIFO with no writer) or never end it (``/dev/zero``); they are refused
with a one-line reason before a byte is read. Light: the result cache hashes files through it
without importing onnx."""
from __future__ import annotations

import os
import stat
from typing import Optional, Tuple

_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


class NotARegularFile(OSError):
    """The path names something other than a regular file (its kind in the message)."""


def open_regular(path: str) -> Tuple[int, os.stat_result]:
    """A read-only descriptor of ``path`` (the caller closes it) and its stat, when it is a
    regular file; else :class:`NotARegularFile`. Opened without blocking, then checked, so that
    a FIFO can be neither waited on nor swapped in between; other failures raise OSError as
    ``open`` does."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        st = os.fstat(fd)
    except BaseException:
        os.close(fd)
        raise
    kind = _kind(st.st_mode)
    if kind is not None:
        os.close(fd)
        raise NotARegularFile(f"not a regular file ({kind})")
    return fd, st


def _kind(mode: int) -> Optional[str]:
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")
