"""Wire format: hardened XML-RPC (and Clarens-style JSON-RPC) without sockets.

The standard library's ``SimpleXMLRPCServer`` reads bodies with no cap,
inflates gzip bodies and echoes exception types back to callers. Here the
body is checked first (:func:`check_body`), only then parsed with
``xmlrpc.client.loads`` (:func:`decode_call`), and answers are marshalled
with ``xmlrpc.client.dumps`` (:func:`encode_result`, :func:`encode_fault`).
Values that XML-RPC cannot carry are made safe by :func:`wire_value`: ``None``
struct members are dropped (``allow_none`` is off) and integers outside the
32-bit range become doubles.
"""

from __future__ import annotations

import json
import math
import re
import xmlrpc.client
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.parsers.expat import ExpatError

from relay.faults import Fault, RelayFault
from relay.xmlfast import fast_call, fast_response, json_value

_FORBIDDEN = re.compile(rb"<!\s*(doctype|entity)", re.IGNORECASE)
_INT_MAX = 2**31 - 1
_INT_MIN = -(2**31)
JSON_TYPES = ("text/json", "application/json")


@dataclass
class Call:
    """One decoded request."""

    method: str
    params: tuple[Any, ...]
    json: bool = False
    id: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


def check_body(body: bytes, content_encoding: str | None, max_bytes: int) -> None:
    """Refuse what must never reach the parser (faults 101, 102, 103)."""
    enc = (content_encoding or "").strip().lower()
    if enc not in ("", "identity"):
        raise RelayFault(
            Fault.ENCODING_REFUSED,
            f"Content-Encoding {content_encoding!r} is not accepted; send the body uncompressed",
        )
    if len(body) > max_bytes:
        raise RelayFault(
            Fault.BODY_TOO_LARGE,
            f"request body of {len(body)} bytes exceeds the relay's limit of {max_bytes} bytes",
        )
    if _FORBIDDEN.search(body):
        raise RelayFault(
            Fault.FORBIDDEN_MARKUP, "<!DOCTYPE and <!ENTITY are not allowed in requests"
        )


def is_json(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() in JSON_TYPES


def decode_call(body: bytes, content_type: str | None = None) -> Call:
    """Parse an XML-RPC ``methodCall`` or a JSON-RPC object (fault 100 if neither)."""
    if is_json(content_type):
        return _decode_json(body)
    fast = fast_call(body)
    if fast is not None:
        return Call(method=fast[0], params=fast[1])
    try:
        params, method = xmlrpc.client.loads(body, use_builtin_types=False)
    except (ExpatError, xmlrpc.client.ResponseError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise RelayFault(Fault.PARSE_ERROR, f"request is not well-formed XML-RPC: {_brief(exc)}") from None
    if not method:
        raise RelayFault(Fault.PARSE_ERROR, "request is not an XML-RPC methodCall")
    return Call(method=method, params=tuple(params))


def _decode_json(body: bytes) -> Call:
    try:
        obj = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RelayFault(Fault.PARSE_ERROR, f"request is not valid JSON: {_brief(exc)}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("method"), str):
        raise RelayFault(Fault.PARSE_ERROR, 'JSON-RPC request needs {"method": str, "params": [...]}')
    params = obj.get("params", [])
    if not isinstance(params, list):
        raise RelayFault(Fault.PARSE_ERROR, "JSON-RPC params must be an array")
    return Call(method=obj["method"], params=tuple(params), json=True, id=obj.get("id"))


def _brief(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def wire_value(value: Any) -> Any:
    """Make ``value`` marshallable: drop ``None`` members, widen big ints to doubles."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if _INT_MIN <= value <= _INT_MAX:
            return value
        return float(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else 0.0
    if isinstance(value, (bytes, bytearray)):
        return xmlrpc.client.Binary(bytes(value))
    if isinstance(value, Mapping):
        return {str(k): wire_value(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [wire_value(v) for v in value if v is not None]
    return value


def encode_result(call: Call, result: Any) -> bytes:
    if call.json:
        return json.dumps({"result": json_value(result), "error": None, "id": call.id}).encode()
    fast = fast_response(True if result is None else result)
    if fast is not None:
        return fast
    value = wire_value(result)
    if value is None:
        value = True
    return xmlrpc.client.dumps((value,), methodresponse=True, allow_none=False).encode("utf-8")


def encode_fault(code: int, message: str, call: Call | None = None) -> bytes:
    if call is not None and call.json:
        body = {"result": None, "error": {"code": int(code), "message": message}, "id": call.id}
        return json.dumps(body).encode()
    return xmlrpc.client.dumps(
        xmlrpc.client.Fault(int(code), message), methodresponse=True, allow_none=False
    ).encode("utf-8")


def plain(value: Any) -> Any:
    """Turn decoded params into plain Python: ``Binary`` → bytes, ``DateTime`` → str."""
    if isinstance(value, xmlrpc.client.Binary):
        return value.data
    if isinstance(value, xmlrpc.client.DateTime):
        return value.value
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
