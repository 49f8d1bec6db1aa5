"""jobmon.wire speaks exactly the XML-RPC of xmlrpc.client, which the relay reads and writes."""

from __future__ import annotations

import xmlrpc.client
from typing import Any

import pytest

from jobmon import wire

REQUESTS: list[tuple[Any, ...]] = [
    (),
    ("1.0", ["ls", "-l", "a b"], {"shell": False, "timeout": 20.0}),
    (1, -5, 2**31 - 1, -(2**31), 0),
    (True, False, 1.5, -0.0, 1e300, float("inf"), 0.1),
    ("<&>\"'", "üñí ✓", "\ud800", "", "line\nbreak\ttab\r"),
    ([1, [2, [3, []]]], {"a": {"b": [b"", b"x" * 200, bytearray(b"\0\1\xff")]}, "": {}}),
    (b"x" * 57, b"y" * 58, b"z" * 1000, b""),
    ({"cluster": 12, "constraint": 'Owner == "alice" && JobPrio > 0'},),
]


@pytest.mark.parametrize("params", REQUESTS)
def test_requests_are_byte_for_byte_those_of_xmlrpc_client(params: tuple[Any, ...]) -> None:
    expected = xmlrpc.client.dumps(params, "jobmon.exec", allow_none=False).encode("utf-8", "xmlcharrefreplace")
    assert wire.dumps_call("jobmon.exec", params) == expected


@pytest.mark.parametrize("bad,error", [
    ((None,), TypeError), ((2**31,), OverflowError), (({1: "x"},), TypeError), ((object(),), TypeError)])
def test_what_xmlrpc_client_refuses_is_refused(bad: tuple[Any, ...], error: type) -> None:
    with pytest.raises(error):
        xmlrpc.client.dumps(bad, "m", allow_none=False)
    with pytest.raises(error):
        wire.dumps_call("m", bad)


def _builtin(value: Any) -> Any:
    if isinstance(value, xmlrpc.client.Binary):
        return value.data
    if isinstance(value, dict):
        return {k: _builtin(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_builtin(v) for v in value]
    return value


ANSWERS: list[Any] = [
    {"stdout": xmlrpc.client.Binary(b"total 0\n\xff"), "stderr": xmlrpc.client.Binary(b""), "exit_code": 0,
     "duration": 0.004, "truncated": False},
    [{"id": "1.0", "state": "running", "progress": {"done": 5.0, "total": 20.0}}, {"id": "1.1"}],
    "text <with> & markup", 7, 2.5, True, [], {},
    {"data": xmlrpc.client.Binary(b"\0" * 5000), "offset": 3.0e9, "next_offset": 3.0e9 + 5000, "eof": True},
]


@pytest.mark.parametrize("value", ANSWERS)
def test_answers_read_as_xmlrpc_client_reads_them(value: Any) -> None:
    body = xmlrpc.client.dumps((value,), methodresponse=True, allow_none=False).encode()
    (expected,), _ = xmlrpc.client.loads(body)
    assert wire.loads_response(body) == _builtin(expected)


def test_base64_is_bytes_and_a_bare_value_is_a_string() -> None:
    body = xmlrpc.client.dumps(({"b": xmlrpc.client.Binary(b"hi")},), methodresponse=True).encode()
    assert wire.loads_response(body) == {"b": b"hi"}
    bare = (b"<?xml version='1.0'?><methodResponse><params><param><value>plain</value>"
            b"</param></params></methodResponse>")
    assert wire.loads_response(bare) == "plain"


def test_a_fault_raises_with_code_and_message() -> None:
    body = xmlrpc.client.dumps(xmlrpc.client.Fault(500, "no job <12.0>"), methodresponse=True).encode()
    with pytest.raises(wire.Fault) as info:
        wire.loads_response(body)
    assert (info.value.faultCode, info.value.faultString) == (500, "no job <12.0>")


@pytest.mark.parametrize("garbage", [b"", b"not xml", b"<methodResponse></methodResponse>",
                                     b"<methodResponse><params><param><value><int>x</int></value>",
                                     b"<methodResponse><params><param><value><bogus/></value></param>"
                                     b"</params></methodResponse>"])
def test_garbage_raises_value_or_expat_errors(garbage: bytes) -> None:
    with pytest.raises((ValueError, wire.ExpatError)):
        wire.loads_response(garbage)
