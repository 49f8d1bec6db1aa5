"""Fast paths for the XML-RPC the relay reads and writes most (relay/xmlrpc.py calls them).

A daemon's poll is parsed and answered for every command a relay hands out, so these
are on the fan-out's critical path (docs/PERFORMANCE.md, "Relay at scale"). Decoding
uses ElementTree's C parser instead of ``xmlrpc.client``'s per-element Python
callbacks; encoding writes the same text ``xmlrpc.client.Marshaller`` writes, in one
pass that also does what ``wire_value`` does. Both give up (return None) on anything
outside the plain types, and the standard library then decides: the wire stays
exactly what a stock client reads and writes (tests/relay/test_xmlrpc_hardening.py).
"""

from __future__ import annotations

import base64
import binascii
import math
import xml.etree.ElementTree as ET  # noqa: N817 - the usual name
import xmlrpc.client
from collections.abc import Mapping
from typing import Any

_INT_MAX = 2**31 - 1
_INT_MIN = -(2**31)


# -- decoding ------------------------------------------------------------------
class _Unusual(Exception):
    """Something :func:`_fast_call` does not take on: the standard library decides."""


def _text(el: ET.Element) -> str:
    return el.text or ""


def _value(v: ET.Element) -> Any:
    if len(v) == 0:
        return _text(v)  # a <value> with no type is a string
    if len(v) != 1 or (v.text or "").strip():
        raise _Unusual
    c = v[0]
    tag = c.tag
    if tag == "string":
        if len(c):
            raise _Unusual
        return _text(c)
    if tag in ("int", "i4"):
        return int(_text(c))
    if tag == "double":
        return float(_text(c))
    if tag == "boolean":
        text = _text(c)
        if text not in ("0", "1"):
            raise _Unusual
        return text == "1"
    if tag == "base64":
        return xmlrpc.client.Binary(base64.b64decode(_text(c).encode("ascii")))
    if tag == "array":
        if len(c) != 1 or c[0].tag != "data":
            raise _Unusual
        return [_value(x) for x in c[0] if _is_value(x)]
    if tag == "struct":
        out: dict[str, Any] = {}
        for m in c:
            if m.tag != "member" or len(m) != 2 or m[0].tag != "name" or m[1].tag != "value":
                raise _Unusual
            out[_text(m[0])] = _value(m[1])
        return out
    raise _Unusual  # dateTime, nil, i8, namespaced types: the standard library's rules


def _is_value(x: ET.Element) -> bool:
    if x.tag != "value":
        raise _Unusual
    return True


def fast_call(body: bytes) -> tuple[str, tuple[Any, ...]] | None:
    """Decode a plain ``methodCall`` with ElementTree's C parser (2.4x faster than
    ``xmlrpc.client.loads`` on a daemon's poll); None for anything else, which then takes the
    standard library's path (and its errors)."""
    try:
        root = ET.fromstring(body)
        if root.tag != "methodCall" or len(root) not in (1, 2) or root[0].tag != "methodName":
            return None
        method = _text(root[0])
        params: tuple[Any, ...] = ()
        if len(root) == 2:
            if root[1].tag != "params":
                return None
            values = []
            for p in root[1]:
                if p.tag != "param" or len(p) != 1 or p[0].tag != "value":
                    return None
                values.append(_value(p[0]))
            params = tuple(values)
    except (_Unusual, ET.ParseError, ValueError, TypeError, UnicodeError, binascii.Error, RecursionError):
        return None
    return (method, params) if method else None


# -- encoding ------------------------------------------------------------------
def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _enc(v: Any, w: Any) -> None:
    t = type(v)
    if t is str:
        w("<value><string>")
        w(_escape(v))
        w("</string></value>\n")
    elif t is bool:
        w("<value><boolean>1</boolean></value>\n" if v else "<value><boolean>0</boolean></value>\n")
    elif t is int:
        if _INT_MIN <= v <= _INT_MAX:
            w(f"<value><int>{v}</int></value>\n")
        else:
            w(f"<value><double>{float(v)!r}</double></value>\n")
    elif t is float:
        w(f"<value><double>{(v if math.isfinite(v) else 0.0)!r}</double></value>\n")
    elif t is dict:
        w("<value><struct>\n")
        for k, x in v.items():
            if x is None:
                continue
            w("<member>\n<name>")
            w(_escape(str(k)))
            w("</name>\n")
            _enc(x, w)
            w("</member>\n")
        w("</struct></value>\n")
    elif t is list or t is tuple:
        w("<value><array><data>\n")
        for x in v:
            if x is not None:
                _enc(x, w)
        w("</data></array></value>\n")
    elif t is bytes or t is xmlrpc.client.Binary:
        w("<value><base64>\n")
        w(base64.encodebytes(v if t is bytes else v.data).decode("ascii"))
        w("</base64></value>\n")
    else:
        raise _Unusual


def fast_response(value: Any) -> bytes | None:
    """A ``methodResponse`` carrying ``value`` as ``xmlrpc.client.dumps`` writes it (after
    ``wire_value``: None members dropped, big ints widened); None for other types."""
    out = ["<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n"]
    try:
        _enc(value, out.append)
    except (_Unusual, RecursionError):
        return None
    out.append("</param>\n</params>\n</methodResponse>\n")
    return "".join(out).encode("utf-8")


def json_value(v: Any) -> Any:
    """``wire_value`` then JSON's forms in one pass: bytes as base64 text, None members dropped."""
    t = type(v)
    if t is str or t is bool or v is None:
        return v
    if t is int:
        return v if _INT_MIN <= v <= _INT_MAX else float(v)
    if t is float:
        return v if math.isfinite(v) else 0.0
    if isinstance(v, Mapping):
        return {str(k): json_value(x) for k, x in v.items() if x is not None}
    if isinstance(v, (list, tuple)):
        return [json_value(x) for x in v if x is not None]
    if isinstance(v, (bytes, bytearray)):
        return base64.b64encode(bytes(v)).decode("ascii")
    if isinstance(v, xmlrpc.client.Binary):
        return base64.b64encode(v.data).decode("ascii")
    if isinstance(v, xmlrpc.client.DateTime):
        return v.value
    if isinstance(v, int):  # bool and IntEnum subclasses
        return json_value(int(v)) if not isinstance(v, bool) else v
    return v
