"""Field lines (headers and trailers): the grammar of RFC 9110 §5 / RFC 9112 §5, shared by
the head parser and the chunked decoder's trailer section.

Strategy: text arrives decoded as latin-1 (one ``str`` char per byte, so obs-text survives
byte for byte). The fast path validates and splits a whole block of field lines with one
``findall`` of a pattern that can only start right after a LF and only ends with CRLF:
every match is exactly one complete, valid line (values already OWS-trimmed: a block with
whitespace before a CR is left to the careful path, so the pattern needs no backtracking
to find where a value ends). Matches never contain a LF but the one ending them, so the
block is valid iff there are as many matches as LFs in it (which also rules out a bare
LF; a bare CR never matches). Anything else (an invalid line, obs-fold, trailing OWS,
``strip_header_spaces``, a block bigger than one field may be) goes through
``parse_field_lines``, the careful line-by-line path, which also decides *which* error a
bad block gets. Both paths return the same pairs for valid input.

Invariants:
- names are RFC 9110 tokens, never followed by whitespace before the colon (unless
  ``strip_header_spaces``); values hold no CTL but HTAB (no NUL, CR, LF, DEL), obs-text is
  kept; OWS is trimmed of SP/HTAB only (never ``str.strip()``, which eats e.g. ``\\x85``).
- the size of a field is the length of its line(s) plus CRLF each (Gunicorn's measure);
  over ``max_field_size`` or more than ``max_fields`` fields -> 431.
- errors come out in line order: the first bad line decides, whatever is after it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from forkhorn.http.errors import (
    InvalidHeader,
    InvalidHeaderName,
    LimitRequestHeaders,
    ObsoleteFolding,
)

if TYPE_CHECKING:
    from forkhorn.http.parser import ParserLimits

TCHAR = r"!#$%&'*+\-.^_`|~0-9A-Za-z"
#: one visible char of a field value (VCHAR / obs-text); SP and HTAB only between them
_VALUE_CHAR = r"[^\x00-\x20\x7f]"

TOKEN_RE = re.compile(f"[{TCHAR}]+")
#: a field value after OWS trimming: no CTL but HTAB anywhere inside
VALUE_RE = re.compile(r"[^\x00-\x08\x0a-\x1f\x7f]*")
#: a field name the fast path takes: a token without ``_`` (such names need ``header_map``,
#: which the careful path applies; the head parser relies on this)
_FAST_NAME = f"[{TCHAR.replace('_', '')}]+"
#: one valid field line without trailing whitespace, starting right after a LF: (name,
#: value without its leading OWS). The value runs to the CR: no backtracking to find where
#: a trailing OWS would begin, which the caller rules out for the whole block at once.
_FIELD_LINE_RE = re.compile(f"(?<=\n)({_FAST_NAME}):[ \t]*" r"([^\x00-\x08\x0a-\x1f\x7f]*)\r\n")

Fields = list[tuple[str, str]]


def strip_ows(value: str) -> str:
    """Trim SP and HTAB only (RFC 9110 OWS)."""
    return value.strip(" \t")


def fast_field_lines(text: str, start: int, end: int) -> list[tuple[str, str]] | None:
    """Split ``text[start:end]`` (CRLF-terminated lines, ``text[start - 1]`` a LF) into
    (UPPER name, value) pairs, or None when any line is not a plain valid field line (the
    careful path then decides). One regex pass and one count, no per-char Python work.
    A value ending in whitespace or a name holding ``_`` (rare) also goes the careful way,
    which trims the one and maps the other (``header_map``)."""
    # ``in`` first: it takes no arguments to parse, where ``find(sub, start, end)`` does
    if (" \r" in text or "\t\r" in text) and (
        text.find(" \r", start, end) >= 0 or text.find("\t\r", start, end) >= 0
    ):
        return None
    pairs = _FIELD_LINE_RE.findall(text, start, end)
    if len(pairs) != text.count("\n", start, end):
        return None
    return [(name.upper(), value) for name, value in pairs]


def check_field_size(size: int, limits: ParserLimits) -> None:
    if size > limits.max_field_size:
        raise LimitRequestHeaders(f"header field over {limits.max_field_size} bytes")


def parse_field_line(line: str, limits: ParserLimits) -> tuple[str, str]:
    """One complete field line (without its CRLF, not a continuation) -> (name, value)."""
    colon = line.find(":")
    if colon < 0:
        raise InvalidHeader(f"field line without a colon: {line[:40]!r}")
    name = line[:colon]
    if limits.strip_header_spaces:
        name = name.rstrip(" \t")
    if not TOKEN_RE.fullmatch(name):
        raise InvalidHeaderName(f"invalid field name {name[:40]!r}")
    value = strip_ows(line[colon + 1 :])
    if not VALUE_RE.fullmatch(value):
        raise InvalidHeader(f"invalid characters in the value of {name[:40]!r}")
    return name, value


def check_continuation(line: str, limits: ParserLimits, first: bool) -> str:
    """An obs-fold line (starts with SP/HTAB): refused unless permitted; returns its text."""
    if first:
        # RFC 9112 §2.2: whitespace between the start-line and the first field: reject
        raise InvalidHeader("whitespace before the first field line")
    if not limits.permit_obsolete_folding:
        raise ObsoleteFolding("obsolete line folding (obs-fold) is refused")
    value = strip_ows(line)
    if not VALUE_RE.fullmatch(value):
        raise InvalidHeader("invalid characters in a folded field value")
    return value


def keep_underscore_name(name: str, limits: ParserLimits, section: str = "header") -> bool:
    """``header_map`` for a field name holding ``_`` (WSGI would alias it with the ``-``
    name): False to drop the field, True to keep it; raises when it is refused."""
    if limits.header_map == "drop":
        return False
    if limits.header_map != "dangerous":
        raise InvalidHeaderName(f"{section} name with '_' refused: {name[:40]!r}")
    return True


def parse_field_lines(text: str, start: int, end: int, limits: ParserLimits) -> Fields:
    """The careful path: every CRLF-terminated line of ``text[start:end]`` in order.

    Returns (name as sent, value) pairs, obs-fold unfolded (when permitted) to one SP.
    """
    fields: Fields = []
    pos = start
    size = 0
    while pos < end:
        eol = text.find("\r\n", pos, end)
        if eol < 0:  # pragma: no cover - callers pass CRLF-terminated blocks
            eol = end
        line = text[pos:eol]
        pos = eol + 2
        if line[:1] in (" ", "\t"):
            size += len(line) + 2
            check_field_size(size, limits)
            folded = check_continuation(line, limits, first=not fields)
            name, value = fields[-1]
            fields[-1] = (name, f"{value} {folded}" if value and folded else value or folded)
            continue
        size = len(line) + 2
        check_field_size(size, limits)
        if len(fields) >= limits.max_fields:
            raise LimitRequestHeaders(f"more than {limits.max_fields} header fields")
        fields.append(parse_field_line(line, limits))
    return fields
