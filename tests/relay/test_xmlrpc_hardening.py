"""Bodies that must never reach the parser, and errors that must be faults, not tracebacks."""

from __future__ import annotations

import gzip
import http.client
import json
import xmlrpc.client
from typing import Any

import pytest

from relay.faults import RelayFault
from relay.xmlrpc import check_body, decode_call, encode_fault, encode_result, wire_value

CALL = xmlrpc.client.dumps(("hi",), "echo.echo").encode()


def post(relay: Any, body: bytes, headers: dict[str, str] | None = None, cred: Any = None,
         path: str = "/clarens") -> tuple[int, str, bytes]:
    conn = http.client.HTTPSConnection("127.0.0.1", relay.port, context=relay.ssl_context(cred), timeout=30)
    try:
        h = {"Content-Type": "text/xml"}
        h.update(headers or {})
        conn.request("POST", path, body=body, headers=h)
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type", ""), resp.read()
    finally:
        conn.close()


def fault_of(body: bytes) -> tuple[int, str]:
    with pytest.raises(xmlrpc.client.Fault) as info:
        xmlrpc.client.loads(body)
    return info.value.faultCode, info.value.faultString


@pytest.mark.parametrize("path", ["/clarens", "/clarens/", "/RPC2"])
def test_all_three_paths_answer(relay: Any, path: str) -> None:
    status, ctype, body = post(relay, CALL, path=path)
    assert status == 200 and ctype.startswith("text/xml")
    assert xmlrpc.client.loads(body)[0] == (["hi"],)


def test_oversized_body_is_fault_101(relay_factory: Any) -> None:
    r = relay_factory(max_body_bytes=2000)
    big = xmlrpc.client.dumps(("x" * 5000,), "echo.echo").encode()
    status, _, body = post(r, big)
    assert status == 200
    code, msg = fault_of(body)
    assert code == 101 and "2000" in msg


def test_doctype_and_entity_are_fault_102(relay: Any) -> None:
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
            b"<methodCall><methodName>echo.echo</methodName><params><param><value>&lol2;</value>"
            b"</param></params></methodCall>")
    assert fault_of(post(relay, bomb)[2])[0] == 102


def test_gzip_body_is_fault_103(relay: Any) -> None:
    status, _, body = post(relay, gzip.compress(CALL), {"Content-Encoding": "gzip"})
    assert status == 200
    code, msg = fault_of(body)
    assert code == 103 and "gzip" in msg


@pytest.mark.parametrize("garbage", [b"", b"not xml at all", b"<methodCall><methodName>x", b"\xff\xfe\x00<"])
def test_garbage_is_fault_100(relay: Any, garbage: bytes) -> None:
    assert fault_of(post(relay, garbage)[2])[0] == 100


def test_method_response_as_request_is_fault_100(relay: Any) -> None:
    body = xmlrpc.client.dumps((1,), methodresponse=True).encode()
    assert fault_of(post(relay, body)[2])[0] == 100


def test_unknown_method_and_bad_params(relay: Any, pki: Any) -> None:
    c = relay.client(pki.alice)
    with pytest.raises(xmlrpc.client.Fault) as info:
        c.no.such.method()
    assert info.value.faultCode == 200
    with pytest.raises(xmlrpc.client.Fault) as info:
        c.jobmon.status(12)
    assert info.value.faultCode == 201 and "parameter 1 must be string" in info.value.faultString
    with pytest.raises(xmlrpc.client.Fault) as info:
        c.jobmon.exec("1.0")
    assert info.value.faultCode == 201 and "jobmon.exec(string, array, struct?)" in info.value.faultString


def test_json_rpc_variant(relay: Any, pki: Any) -> None:
    req = json.dumps({"method": "jobmon.whoami", "params": [], "id": 7}).encode()
    status, ctype, body = post(relay, req, {"Content-Type": "text/json"}, cred=pki.bob)
    assert ctype.startswith("text/json")
    assert json.loads(body) == {"result": {"dn": pki.bob.dn, "admin": False, "auth": "certificate"},
                                "error": None, "id": 7}
    req = json.dumps({"method": "nope", "params": [], "id": 8}).encode()
    reply = json.loads(post(relay, req, {"Content-Type": "application/json"})[2])
    assert reply["result"] is None and reply["error"]["code"] == 200 and reply["id"] == 8


def test_introspection(relay: Any, pki: Any) -> None:
    c = relay.client(pki.alice)
    names = c.system.listMethods()
    assert {"jobmon.exec", "system.auth2", "echo.echo", "JobMon.registerJob"} <= set(names)
    assert "jobmon.exec" in c.system.methodHelp("jobmon.exec")
    assert c.system.methodSignature("jobmon.exec") == [["struct", "string", "array", "struct"],
                                                       ["struct", "string", "array"]]


# -- without sockets -----------------------------------------------------------
def test_check_body_unit() -> None:
    check_body(CALL, None, 10000)
    check_body(CALL, "identity", 10000)
    for body, enc, code in [(CALL, "deflate", 103), (CALL, None, 101), (b"<!entity x>", None, 102)]:
        with pytest.raises(RelayFault) as info:
            check_body(body, enc, 50 if code == 101 else 10000)
        assert info.value.code == code


def test_wire_value_makes_anything_marshallable() -> None:
    value = wire_value({"a": None, "big": 2**40, "b": b"\x00\x01", "l": [1, None, 2], "inf": float("inf")})
    assert value["big"] == float(2**40) and "a" not in value and value["l"] == [1, 2] and value["inf"] == 0.0
    call = decode_call(CALL)
    out = xmlrpc.client.loads(encode_result(call, {"x": None, "n": 2**33}))[0][0]
    assert out == {"n": float(2**33)}
    assert fault_of(encode_fault(500, "no job 1.0"))[0] == 500


def test_the_fast_decoder_reads_exactly_what_the_standard_library_reads() -> None:
    """relay/xmlrpc.py decodes plain calls with ElementTree; it must agree with xmlrpc.client on
    everything, and leave to it what it does not take on (dateTime, i8, odd markup)."""
    import xmlrpc.client

    from relay.xmlfast import fast_call as _fast
    from relay.xmlrpc import Call, decode_call

    def _fast_call(body: bytes) -> Call | None:
        got = _fast(body)
        return None if got is None else Call(method=got[0], params=got[1])

    samples: list[tuple[Any, ...]] = [
        (), ("s", 1, -2**31, 2**31 - 1, 1.5, -0.0, True, False, "", "  spaced  ", "ünï<&>\"'"),
        (xmlrpc.client.Binary(b""), xmlrpc.client.Binary(bytes(range(256)) * 3)),
        ({"a": [1, {"b": []}, {}], "": "empty key", "ü": [[[]]]}, [None.__class__.__name__]),
        ("abc-123", 50.0, [{"id": "x1", "result": {"exit_code": 0, "stdout": xmlrpc.client.Binary(b"out\n"),
                                                 "truncated": False, "duration": 0.25}}]),
    ]
    for params in samples:
        body = xmlrpc.client.dumps(params, "m.x").encode()
        fast = _fast_call(body)
        assert fast is not None, params
        assert (fast.params, fast.method) == xmlrpc.client.loads(body, use_builtin_types=False)
    untyped = b"<?xml version='1.0'?><methodCall><methodName>m</methodName><params><param><value> raw </value></param></params></methodCall>"
    assert _fast_call(untyped) is not None and _fast_call(untyped).params == (" raw ",)  # type: ignore[union-attr]
    # left to the standard library: its types, and its refusals
    dated = xmlrpc.client.dumps((xmlrpc.client.DateTime(0),), "m").encode()
    assert _fast_call(dated) is None and isinstance(decode_call(dated).params[0], xmlrpc.client.DateTime)
    bad_bool = untyped.replace(b"<value> raw </value>", b"<value><boolean> 1</boolean></value>")
    assert _fast_call(bad_bool) is None
    with pytest.raises(RelayFault) as info:
        decode_call(bad_bool)
    assert info.value.code == 100
    deep = b"<methodCall><methodName>m</methodName><params><param>" + b"<value><array><data>" * 3000 \
        + b"</data></array></value>" * 3000 + b"</param></params></methodCall>"
    assert _fast_call(deep) is None


def test_the_fast_encoder_writes_exactly_what_the_standard_library_writes() -> None:
    import json
    import xmlrpc.client

    from relay.xmlfast import fast_response, json_value

    samples: list[Any] = [
        True, 0, -2**31, 2**31 - 1, 2**40, 1.25, float("inf"), "", "a<b&c>d ü", b"\x00bytes",
        xmlrpc.client.Binary(bytes(range(256)) * 2), [], {}, [1, None, "x"],
        {"id": "r1", "op": "exec", "args": {"argv": ["ls", "-l"], "shell": False, "timeout": 60.0,
                                             "max_output": 1048576.0, "cwd": "."}, "deadline": 1.7e9, "gone": None},
        {"results": [{"job": "1.0", "result": {"exit_code": 0, "stdout": b"hi\n", "stderr": b""}},
                     {"job": "1.1", "fault": 501, "message": "not connected"}], "done": True},
    ]
    for value in samples:
        assert fast_response(value) == xmlrpc.client.dumps((wire_value(value),), methodresponse=True,
                                                           allow_none=False).encode(), value
        # and the JSON answer: bytes as base64, as before
        plain = json.loads(json.dumps(json_value(value)))
        assert plain == json.loads(json.dumps(_jsonable(wire_value(value)))), value
    assert fast_response(xmlrpc.client.DateTime(0)) is None  # left to the standard library


def _jsonable(value: Any) -> Any:
    """JSON's forms of a wire value, as relay/xmlrpc.py wrote them before relay/xmlfast.py."""
    import base64
    import xmlrpc.client

    if isinstance(value, xmlrpc.client.Binary):
        return base64.b64encode(value.data).decode("ascii")
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
