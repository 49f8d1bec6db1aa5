"""XML-RPC on the wire for the CLI, without ``xmlrpc.client``.

``xmlrpc.client`` imports ``http.client`` and with it the ``email`` package:
about 25 ms of every ``jobmon`` command's start (docs/PERFORMANCE.md, "CLI
latency"). The CLI needs only the codec, so it is here, written after
``xmlrpc.client`` (Python 3.11) and kept to what it does:

* :func:`dumps_call` writes exactly the bytes ``xmlrpc.client.dumps(params,
  method).encode("utf-8", "xmlcharrefreplace")`` writes, with
  ``allow_none=False`` (tests compare the two over many values);
* :func:`loads_response` reads a ``methodResponse`` with expat as
  ``xmlrpc.client.loads`` does, except that ``<base64>`` becomes ``bytes`` and
  ``<dateTime.iso8601>`` its text; a fault raises :class:`Fault`.

Malformed answers raise ``ValueError`` (:class:`ResponseError`) or
:class:`ExpatError`; the client turns both into "answered garbage".
"""

from __future__ import annotations

import binascii
import pyexpat
from collections.abc import Callable
from pyexpat import ExpatError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAXINT = 2**31 - 1
MININT = -(2**31)
XML_HEADER = "<?xml version='1.0'?>\n"
__all__ = ["ExpatError", "Fault", "ResponseError", "dumps_call", "loads_response"]


class Fault(Exception):
    """An XML-RPC fault from the relay."""

    def __init__(self, faultCode: int, faultString: str) -> None:  # noqa: N803 - the wire's names
        super().__init__(faultCode, faultString)
        self.faultCode = faultCode
        self.faultString = faultString


class ResponseError(ValueError):
    """The answer is not a well-formed XML-RPC methodResponse."""


def escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ------------------------------------------------------------------ encoding
def _dump(value: Any, write: Callable[[str], Any], memo: set[int]) -> None:
    t = type(value)
    if t is str:
        write("<value><string>")
        write(escape(value))
        write("</string></value>\n")
    elif t is bool:
        write("<value><boolean>")
        write("1" if value else "0")
        write("</boolean></value>\n")
    elif t is int:
        if value > MAXINT or value < MININT:
            raise OverflowError("int exceeds XML-RPC limits")
        write("<value><int>")
        write(str(int(value)))
        write("</int></value>\n")
    elif t is float:
        write("<value><double>")
        write(repr(value))
        write("</double></value>\n")
    elif t is bytes or t is bytearray:
        write("<value><base64>\n")
        write(_encodebytes(value))
        write("</base64></value>\n")
    elif t is list or t is tuple:
        if id(value) in memo:
            raise TypeError("cannot marshal recursive sequences")
        memo.add(id(value))
        write("<value><array><data>\n")
        for v in value:
            _dump(v, write, memo)
        write("</data></array></value>\n")
        memo.discard(id(value))
    elif t is dict:
        if id(value) in memo:
            raise TypeError("cannot marshal recursive dictionaries")
        memo.add(id(value))
        write("<value><struct>\n")
        for k, v in value.items():
            write("<member>\n")
            if not isinstance(k, str):
                raise TypeError("dictionary key must be string")
            write("<name>%s</name>\n" % escape(k))
            _dump(v, write, memo)
            write("</member>\n")
        write("</struct></value>\n")
        memo.discard(id(value))
    elif value is None:
        raise TypeError("cannot marshal None unless allow_none is enabled")
    else:
        raise TypeError(f"cannot marshal {t} objects")


def _encodebytes(data: bytes | bytearray) -> str:
    """``base64.encodebytes``: lines of 76 characters, each ending in a newline."""
    chunks = [binascii.b2a_base64(data[i:i + 57]) for i in range(0, len(data), 57)]
    return b"".join(chunks).decode("ascii")


def dumps_call(method: str, params: tuple[Any, ...] | list[Any]) -> bytes:
    """The body of an XML-RPC ``methodCall``, as ``xmlrpc.client`` writes it."""
    out: list[str] = [XML_HEADER, "<methodCall>\n<methodName>", method, "</methodName>\n<params>\n"]
    write = out.append
    memo: set[int] = set()
    for v in params:
        write("<param>\n")
        _dump(v, write, memo)
        write("</param>\n")
    write("</params>\n</methodCall>\n")
    return "".join(out).encode("utf-8", "xmlcharrefreplace")


# ------------------------------------------------------------------ decoding
class _Unmarshaller:
    """``xmlrpc.client.Unmarshaller`` with builtin types (bytes for base64)."""

    def __init__(self) -> None:
        self.stack: list[Any] = []
        self.marks: list[int] = []
        self.data: list[str] = []
        self.value = False
        self.kind: str | None = None

    def start(self, tag: str, attrs: Any) -> None:
        if ":" in tag:
            tag = tag.split(":")[-1]
        if tag in ("array", "struct"):
            self.marks.append(len(self.stack))
        self.data = []
        if self.value and tag not in _END:
            raise ResponseError(f"unknown tag {tag!r}")
        self.value = tag == "value"

    def text(self, text: str) -> None:
        self.data.append(text)

    def end(self, tag: str) -> None:
        f = _END.get(tag)
        if f is None and ":" in tag:
            f = _END.get(tag.split(":")[-1])
        if f is not None:
            f(self, "".join(self.data))

    def push(self, value: Any) -> None:
        self.stack.append(value)
        self.value = False

    def end_nil(self, data: str) -> None:
        self.push(None)

    def end_boolean(self, data: str) -> None:
        if data not in ("0", "1"):
            raise TypeError("bad boolean value")
        self.push(data == "1")

    def end_int(self, data: str) -> None:
        self.push(int(data))

    def end_double(self, data: str) -> None:
        self.push(float(data))

    def end_string(self, data: str) -> None:
        self.push(data)

    def end_base64(self, data: str) -> None:
        self.push(binascii.a2b_base64(data.encode("ascii")))

    def end_array(self, data: str) -> None:
        mark = self.marks.pop()
        self.stack[mark:] = [self.stack[mark:]]
        self.value = False

    def end_struct(self, data: str) -> None:
        mark = self.marks.pop()
        items = self.stack[mark:]
        self.stack[mark:] = [{items[i]: items[i + 1] for i in range(0, len(items), 2)}]
        self.value = False

    def end_value(self, data: str) -> None:
        if self.value:  # <value>text</value>: a string
            self.end_string(data)

    def end_params(self, data: str) -> None:
        self.kind = "params"

    def end_fault(self, data: str) -> None:
        self.kind = "fault"

    def end_method_name(self, data: str) -> None:
        self.kind = "methodName"

    def close(self) -> tuple[Any, ...]:
        if self.kind is None or self.marks:
            raise ResponseError("not a complete XML-RPC answer")
        if self.kind == "fault":
            fault = self.stack[0] if self.stack else None
            if not isinstance(fault, dict):
                raise ResponseError("malformed fault")
            raise Fault(fault.get("faultCode"), fault.get("faultString"))  # type: ignore[arg-type]
        return tuple(self.stack)


_END: dict[str, Callable[[_Unmarshaller, str], None]] = {
    "nil": _Unmarshaller.end_nil,
    "boolean": _Unmarshaller.end_boolean,
    **dict.fromkeys(("i1", "i2", "i4", "i8", "int", "biginteger"), _Unmarshaller.end_int),
    "double": _Unmarshaller.end_double,
    "float": _Unmarshaller.end_double,
    "string": _Unmarshaller.end_string,
    "name": _Unmarshaller.end_string,
    "dateTime.iso8601": _Unmarshaller.end_string,
    "base64": _Unmarshaller.end_base64,
    "array": _Unmarshaller.end_array,
    "struct": _Unmarshaller.end_struct,
    "value": _Unmarshaller.end_value,
    "params": _Unmarshaller.end_params,
    "fault": _Unmarshaller.end_fault,
    "methodName": _Unmarshaller.end_method_name,
}


def loads_response(body: bytes) -> Any:
    """The value of a ``methodResponse`` (a 1-tuple unwrapped, as ``ServerProxy`` does)."""
    u = _Unmarshaller()
    parser = pyexpat.ParserCreate(None, None)
    parser.buffer_text = True
    parser.ordered_attributes = True
    parser.StartElementHandler = u.start
    parser.EndElementHandler = u.end
    parser.CharacterDataHandler = u.text
    parser.Parse(body, True)
    values = u.close()
    return values[0] if len(values) == 1 else values
