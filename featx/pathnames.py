"""File names that are not valid UTF-8 (legal on Linux, common in old zip archives).

Python hands them over as str with lone surrogates (U+DC80..U+DCFF, "surrogateescape"), which
neither HDF5's UTF-8 strings nor a terminal accept. Stored and shown, such a name is written
with `\\xNN` for each undecodable byte and `\\\\` for a backslash: readable, and reversible.
Caches mark this with the root attribute `path_escapes` = 1; in older caches no name was
escaped.
"""

from __future__ import annotations

import os
import re

_ESCAPED = re.compile(r"\\(\\|x[89a-f][0-9a-f])")


def os_bytes(name: str) -> bytes:
    """The bytes of a name as the file system has them."""
    return name.encode("utf-8", "surrogateescape")


def to_stored(name: str) -> str:
    """A file system name (str, possibly with surrogates) -> valid, readable, reversible text."""
    if "\\" not in name and name.isascii():
        return name  # the common case, unchanged
    out = []
    for ch in name:
        o = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif 0xDC80 <= o <= 0xDCFF:
            out.append(f"\\x{o - 0xDC00:02x}")
        elif 0xD800 <= o <= 0xDFFF:  # a surrogate that no file name can hold: keep it visible
            out.append(f"\\u{o:04x}")
        else:
            out.append(ch)
    return "".join(out)


def from_stored(text: str) -> str:
    """The inverse of `to_stored`: the name to hand to open()."""
    if "\\" not in text:
        return text
    return _ESCAPED.sub(lambda m: "\\" if m.group(1) == "\\"
                        else chr(0xDC00 + int(m.group(1)[1:], 16)), text)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def printable(text: str) -> str:
    """Text for one line of a message: control characters (a newline in a file name) as
    `\\xNN`, so that one name never looks like two lines."""
    return text if text.isprintable() else _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}",
                                                         text)


def show(name: str | os.PathLike) -> str:
    """A path for messages: any name, printable on a UTF-8 terminal on one line, no traceback
    ever."""
    return printable(to_stored(os.fspath(name)))
