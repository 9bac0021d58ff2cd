"""The access-log formatter: Gunicorn's ``%(atom)s`` format, compiled once per process.

Theory of operation
-------------------
An access line is written per request, so the format is turned once, when the logger is
set up, into one specialised Python function (the way ``collections.namedtuple`` and
``dataclasses`` build their methods): each ``%(atom)s`` becomes an inline expression over
``environ``, ``status``, ``headers``, ``sent`` and ``request_time``; the function computes
only the atoms the format uses. No dict of every atom, no context object, no ``strftime``
(``LogClock`` caches the date per second), no function call per atom, and atoms whose value
never changes (``l``, unknown atoms) are folded into the literal text. User text never
becomes code: literal text, atom names and header names only reach the generated source as
names of constants (``_k0``, ``_k[0]``) in its namespace.

With the usual formats (every conversion a bare ``%(x)s``) the line is one f-string of
constants and values (a single ``BUILD_STRING``; ``r`` is three values, ``s`` a look-up in a
table of the status lines met so far). ``sink(writer, then, inline)`` compiles the whole
per-request job into one function: the line, its write into the buffered file, the call of
the other sinks (StatsD) and statements given by the caller (the metrics' stores,
``WorkerMetrics.record_source``), so the access log and the metrics cost one Python frame.

Escaping is checked once per line, not per value. A plain line is encoded (it must be, to
be written) and ``bytes.translate`` deletes every printable ASCII byte but ``"`` and ``\\``:
if what is left is exactly the format's own quotes (and the newline), no value holds a
quote, backslash, control or non-ASCII character and the bytes are written as they are.
Other formats (specs, ``%(D)d``) join the values and test them (``isascii``,
``isprintable``, no ``"`` nor ``\\``) before one ``%`` on a positional format. Only a line
that fails the test escapes each value (``escape``). Unknown atoms render as ``-`` (as in
Gunicorn).

Atoms: ``h`` remote address, ``l`` ``-``, ``u`` user (basic auth), ``t`` date, ``r`` request
line, ``m`` method, ``U`` path, ``q`` query, ``H`` protocol, ``s`` status, ``B`` body bytes,
``b`` body bytes or ``-``, ``f`` referer, ``a`` user agent, ``T``/``M``/``D``/``L`` request time
in s/ms/us/decimal s, ``p`` ``<pid>``, ``{name}i`` request header, ``{name}o`` response
header, ``{name}e`` environ variable (names case-insensitive, as in Gunicorn). ``B``, ``T``,
``M`` and ``D`` are numbers, so ``%(D)d`` works as in Gunicorn; every other atom is text.

Invariant: a value a client can influence never reaches the log raw. ``"``, ``\\``, control
characters and chars >= 0x7f (environ strings are latin-1 decoded bytes) are escaped
(``\\"``, ``\\\\``, ``\\xHH``) as Apache does, so no client can end a field or forge a line.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from forkhorn.logging.clock import LogClock

#: ``%%``, or ``%(name)`` + flags/width/precision + the conversion character
_CONVERSION = re.compile(r"%(?:(%)|\(([^)]*)\)([#0 +-]*\d*(?:\.\d+)?)([a-zA-Z]))")
_NUMERIC_CONVERSIONS = frozenset("diouxXeEfFgGc")
#: printable ASCII but ``"`` and ``\\``: ``bytes.translate`` deletes these from an encoded
#: line; what is left over must be exactly the format's own quotes/backslashes + newline
_PLAIN_BYTES = bytes(c for c in range(0x20, 0x7F) if c not in b'"\\')

# Environ strings are latin-1 decoded bytes (PEP 3333), so every char is < 256.
_ESCAPES: dict[int, str] = {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0x100)]}
_ESCAPES[ord('"')] = '\\"'
_ESCAPES[ord("\\")] = "\\\\"

Environ = dict[str, Any]
Headers = Sequence[tuple[str, str]]
FormatFunction = Callable[[Environ, str, Headers, int, float], str]

DEFAULT_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'

#: atom -> expression (text). ``get`` is ``environ.get``; ``took`` the request time.
_TEXT_ATOMS: dict[str, str] = {
    "h": 'get("REMOTE_ADDR") or "-"',
    "l": '"-"',
    "u": '_user(environ) if "HTTP_AUTHORIZATION" in environ else "-"',
    "t": "_clf_cache[1] if _now() < _clf_cache[0] else _clf()",
    "r": "f\"{get('REQUEST_METHOD', '-')} {get('RAW_URI') or _target(environ)} "
    "{get('SERVER_PROTOCOL', '-')}\"",
    "m": 'get("REQUEST_METHOD") or "-"',
    "U": 'get("PATH_INFO") or "-"',
    "q": 'get("QUERY_STRING", "")',
    "H": 'get("SERVER_PROTOCOL") or "-"',
    "s": 'status.partition(" ")[0] or "-"',
    "B": "str(sent)",
    "b": 'str(sent) if sent else "-"',
    "f": 'get("HTTP_REFERER") or "-"',
    "a": 'get("HTTP_USER_AGENT") or "-"',
    "T": "str(int(took))",
    "M": "str(int(took * 1000))",
    "D": "str(int(took * 1000000))",
    "L": '"%.6f" % took',
    "p": '"<%d>" % _clock.pid',
}
#: cheaper expressions for the one-f-string line (``_plain_body``): the f-string formats a
#: number itself, ``r`` is three values (no inner string) and ``s`` a table look-up
_PLAIN_ATOMS: dict[str, tuple[str, ...]] = {
    "r": (
        'get("REQUEST_METHOD", "-")',
        'get("RAW_URI") or _target(environ)',
        'get("SERVER_PROTOCOL", "-")',
    ),
    "s": ("_code_of(status) or _status_code(status)",),
    "B": ("sent",),
    "b": ('sent or "-"',),
    "T": ("int(took)",),
    "M": ("int(took * 1000)",),
    "D": ("int(took * 1000000)",),
}
_MAX_STATUS_LINES = 256
#: atoms Gunicorn gives as numbers, for ``%(D)d``-style conversions
_NUMBER_ATOMS: dict[str, str] = {
    "B": "sent",
    "T": "int(took)",
    "M": "int(took * 1000)",
    "D": "int(took * 1000000)",
}


def escape(value: str) -> str:
    """Make a client-supplied value safe inside a log line."""
    if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return value
    return value.translate(_ESCAPES)


def _escape_value(value: Any) -> str:
    """``escape`` for a value of the f-string line, which need not be a str."""
    return escape(value if type(value) is str else str(value))


def _as_text(value: Any) -> str:
    if value is None or value == "":
        return "-"
    return value if type(value) is str else str(value)


def _target(environ: Environ) -> str:
    """The request target when the environ has no ``RAW_URI`` (not built by forkhorn)."""
    target = str(environ.get("PATH_INFO", ""))
    if environ.get("QUERY_STRING"):
        target += "?" + str(environ["QUERY_STRING"])
    return target


def _user(environ: Environ) -> str:
    auth = environ.get("HTTP_AUTHORIZATION")
    if not auth or auth[:6].lower() != "basic ":
        return "-"
    try:
        decoded = base64.b64decode(auth[6:].strip(), validate=True).decode("latin-1")
    except (binascii.Error, ValueError):
        return "-"
    return decoded.partition(":")[0] or "-"


def _response_header(headers: Headers, lowered: str) -> str:
    for key, value in headers:
        if key.lower() == lowered:
            return str(value)
    return "-"


def _environ_value(environ: Environ, key: str) -> str:
    value = environ.get(key)
    if value is None and key != key.upper():
        value = environ.get(key.upper())
    return _as_text(value)


def request_header_key(name: str) -> str:
    """The environ key a request header lands on (PEP 3333: ``CONTENT_TYPE``, ``HTTP_X_Y``)."""
    lowered = name.lower()
    if lowered == "content-type":
        return "CONTENT_TYPE"
    if lowered == "content-length":
        return "CONTENT_LENGTH"
    return "HTTP_" + name.upper().replace("-", "_")


class AccessFormatter:
    """``format(...)`` -> one line (no newline); ``format_bytes(...)`` -> the line encoded,
    newline included (what the access writer stores); ``sink(writer, then)`` -> the whole
    per-request job in one function. All take ``(environ, status, headers, sent,
    request_time)``.

    ``request_id_for``: computes the request id when the handler did not put one in the
    environ (used by ``%({forkhorn.request_id}e)s``).
    """

    def __init__(
        self,
        fmt: str = DEFAULT_FORMAT,
        clock: LogClock | None = None,
        request_id_for: Callable[[Environ], str] | None = None,
    ) -> None:
        self.fmt = fmt
        self.clock = clock or LogClock()
        self._request_id_for: Callable[[Environ], str] | None = None  # not while validating
        self.atoms: list[str] = []
        #: constants the generated code refers to by name (user text only ever lives here)
        self._constants: list[str] = []
        #: the format as (literal text, None, "") and (expression, is text, atom) pieces
        self._pieces: list[tuple[str, bool | None, str]] = []
        self._plain = True  # every conversion is a bare %s: the line is one f-string
        self._specs: list[str] = []  # each conversion's %-spec (for a format that is not plain)
        self._leftover = b"\n"  # what a safe line keeps after deleting _PLAIN_BYTES
        self._stray_percent = False
        #: status line -> the ``s`` atom, filled as statuses are met (see ``_status_code``)
        self._codes: dict[str, str] = {}
        position = 0
        for match in _CONVERSION.finditer(fmt):
            self._literal(fmt[position : match.start()])
            self._conversion(match)
            position = match.end()
        self._literal(fmt[position:])
        if self._stray_percent:
            raise ValueError(f"invalid access_log_format {fmt!r}: a % without (atom)")
        #: the statements that leave the encoded line in ``data`` (``sink`` reuses them)
        self._data_body: list[str] = []
        self.source = self._source()
        namespace = self._namespace()
        exec(self.source, namespace)  # generated from fixed templates only
        self.format: FormatFunction = namespace["format"]
        self.format_bytes: Callable[..., bytes] = namespace["format_bytes"]
        try:
            self.format({}, "200 OK", [], 0, 0.0)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"invalid access_log_format {fmt!r}: {exc}") from None
        self._request_id_for = request_id_for

    def sink(
        self,
        writer: Any,
        then: Callable[..., Any] | None = None,
        inline: tuple[list[str], dict[str, Any]] | None = None,
    ) -> Callable[..., None]:
        """One function that formats the line, writes it with ``writer`` (a ``LineWriter``),
        calls ``then`` with the same arguments (other sinks, if any) and runs ``inline``'s
        statements (``WorkerMetrics.record_source()``): a single Python frame per request
        for the usual case, the access log plus metrics.

        A buffered writer gets ``writer.file.write(data)`` inline (its current file: a
        reopen swaps it); a failed write, or a line-buffered writer, goes through
        ``writer.write_bytes`` (the retry after a concurrent reopen, errors swallowed).
        """
        lines = ["def sink(environ, status, headers, sent, took):", *self._data_body]
        if writer.line_buffered:
            lines.append("    _writer.write_bytes(data)")
        else:
            lines += [
                "    try:",
                "        _writer.file.write(data)",
                "    except (OSError, ValueError):",
                "        _writer.write_bytes(data)",
            ]
        if then is not None:
            lines.append("    _then(environ, status, headers, sent, took)")
        namespace = self._namespace()
        namespace.update(format_bytes=self.format_bytes, _writer=writer, _then=then)
        if inline is not None:
            statements, names = inline
            if any(not name.startswith("_m_") for name in names):
                raise ValueError("inlined statements may only bring names starting with _m_")
            lines += statements
            namespace.update(names)
        exec("\n".join(lines) + "\n", namespace)  # fixed templates, as above
        return namespace["sink"]  # type: ignore[no-any-return]

    # --- parsing the format ------------------------------------------------------------------

    def _literal(self, text: str, escaped: bool = False) -> None:
        if "%" in text and not escaped:
            self._stray_percent = True
        if text and self._pieces and self._pieces[-1][1] is None:  # one constant, not two
            self._pieces[-1] = (self._pieces[-1][0] + text, None, "")
        elif text:
            self._pieces.append((text, None, ""))

    def _conversion(self, match: re.Match[str]) -> None:
        if match.group(1):
            self._literal("%", escaped=True)
            return
        atom, spec, kind = match.group(2), match.group(3), match.group(4)
        self.atoms.append(atom)
        if spec or kind != "s":
            self._plain = False
        if kind in _NUMERIC_CONVERSIONS and atom in _NUMBER_ATOMS:
            self._pieces.append((_NUMBER_ATOMS[atom], False, atom))
        else:
            expression = self._text_expression(atom)
            if expression == '"-"' and not spec and kind == "s":
                self._literal("-", escaped=True)  # ``l``, unknown atoms: literal text
                return
            self._pieces.append((expression, True, atom))
        self._specs.append(f"%{spec}{kind}")

    def _constant(self, value: str) -> str:
        self._constants.append(value)
        return f"_k[{len(self._constants) - 1}]"

    def _text_expression(self, atom: str) -> str:
        fixed = _TEXT_ATOMS.get(atom)
        if fixed is not None:
            return fixed
        if atom.startswith("{") and len(atom) > 3 and atom[-2] == "}":
            name, kind = atom[1:-2], atom[-1]
            if kind == "i":
                return f'get({self._constant(request_header_key(name))}) or "-"'
            if kind == "o":
                return f"_response_header(headers, {self._constant(name.lower())})"
            if kind == "e":
                if name.lower() == "forkhorn.request_id":
                    return "_request_id(environ)"
                return f"_environ_value(environ, {self._constant(name)})"
        return '"-"'

    def _request_id(self, environ: Environ) -> str:
        value = environ.get("forkhorn.request_id")
        if value is None and self._request_id_for is not None:
            value = self._request_id_for(environ)
        return _as_text(value)

    def _status_code(self, status: str) -> str:
        """The ``s`` atom of a status line not met yet; remembered, as an app uses a few
        status lines over and over (a bounded table: an app inventing statuses cannot
        grow it without end)."""
        code = status.partition(" ")[0] or "-"
        if len(self._codes) < _MAX_STATUS_LINES:
            self._codes[status] = code
        return code

    # --- generating the functions --------------------------------------------------------------

    def _source(self) -> str:
        if self._plain:
            literal = "".join(text for text, kind, _ in self._pieces if kind is None)
            self._plain = literal.isascii() and literal.isprintable()
            self._leftover = literal.encode().translate(None, _PLAIN_BYTES) + b"\n"
        if not self._plain:
            self._data_body = ["    data = format_bytes(environ, status, headers, sent, took)"]
            return "\n".join(self._percent_source()) + "\n"
        self._data_body = self._plain_body()
        return "\n".join([
            "def format_bytes(environ, status, headers, sent, took):",
            *self._data_body,
            "    return data",
            "",
            "def format(*args):",
            '    return format_bytes(*args)[:-1].decode("utf-8", "backslashreplace")',
        ]) + "\n"  # fmt: skip

    def _plain_body(self) -> list[str]:
        """Every conversion a bare ``%(x)s``: each value in a local, then the line as one
        f-string (a single ``BUILD_STRING``: no tuple, no ``join``; a value that is not a
        str, such as an int or an app's odd environ value, is formatted as ``str()`` would),
        encoded. The safety check is one ``translate`` of the encoded line; only a line that
        fails it is built again with every value escaped."""
        head = []
        line: list[str] = []
        escaped: list[str] = []
        for number, (text, kind, atom) in enumerate(self._pieces):
            if kind is None:  # literal text: a named constant, never code
                self._constant(text)
                name = f"_k{len(self._constants) - 1}"
                line.append(f"{{{name}}}")
                escaped.append(f"{{{name}}}")
                continue
            # an atom may be several values joined by single spaces (``r``): no inner string
            expressions = _PLAIN_ATOMS.get(atom, (text,))
            names = [f"v{number}_{part}" for part in range(len(expressions))]
            head += [f"    {name} = {expr}" for name, expr in zip(names, expressions, strict=True)]
            line.append(" ".join(f"{{{name}}}" for name in names))
            escaped.append(" ".join(f"{{_escape_value({name})}}" for name in names))
        if any("get(" in statement for statement in head):
            head.insert(0, "    get = environ.get")
        return [
            *head,
            f'    data = f"{"".join(line)}\\n".encode("utf-8", "backslashreplace")',
            "    if data.translate(None, _PLAIN) != _LEFTOVER:  # a value needs escaping",
            f'        data = f"{"".join(escaped)}\\n".encode("utf-8", "backslashreplace")',
        ]

    def _percent_source(self) -> list[str]:
        """A format with specs or numeric conversions (``%(D)d``, ``%(h)-10s``): the values
        are tested together, then substituted with ``%`` into the positional format."""
        head = ["    get = environ.get"]
        values: list[str] = []
        escaped: list[str] = []
        texts: list[str] = []
        for number, (text, kind, _) in enumerate(self._pieces):
            if kind is None:
                continue
            name = f"v{number}"
            head.append(f"    {name} = {text}")
            values.append(name)
            if kind:
                texts.append(name)
                escaped.append(f"_escape({name})")
            else:
                escaped.append(name)
        joined = f'"".join(({", ".join(texts)},))' if texts else '""'
        check = [f"    line = {joined}"]
        if texts:
            check = [
                "    try:",
                f"    {check[0]}",
                "    except TypeError:  # a non-str value an app put in the environ",
                f"        {', '.join(texts)}, = [str(v) for v in ({', '.join(texts)},)]",
                f"    {check[0]}",
            ]
        return [
            "def format(environ, status, headers, sent, took):",
            *head,
            *check,
            "    if (line.isascii() and line.isprintable() and '\"' not in line",
            "            and '\\\\' not in line):",
            f"        return _fmt % ({', '.join(values)},)",
            f"    return _fmt % ({', '.join(escaped)},)",
            "",
            "def format_bytes(*args):",
            '    return (format(*args) + "\\n").encode("utf-8", "backslashreplace")',
        ]

    def _namespace(self) -> dict[str, Any]:
        positional = "".join(
            text.replace("%", "%%") if kind is None else spec
            for (text, kind, _), spec in zip(self._pieces, self._spec_iter(), strict=True)
        )
        namespace = {
            "_k": tuple(self._constants),
            "_fmt": positional,
            "_PLAIN": _PLAIN_BYTES,
            "_LEFTOVER": self._leftover,
            "_escape": escape,
            "_escape_value": _escape_value,
            "_clf": self.clock.clf,
            "_clf_cache": self.clock.clf_cache,
            "_now": time.time,
            "_clock": self.clock,
            "_code_of": self._codes.get,
            "_status_code": self._status_code,
            "_user": _user,
            "_target": _target,
            "_response_header": _response_header,
            "_environ_value": _environ_value,
            "_request_id": self._request_id,
        }
        # each constant also as a global of its own: ``{_k3}`` in an f-string, no subscript
        namespace.update((f"_k{index}", value) for index, value in enumerate(self._constants))
        return namespace

    def _spec_iter(self) -> list[str]:
        specs = iter(self._specs)
        return [next(specs) if kind is not None else "" for _, kind, _ in self._pieces]
