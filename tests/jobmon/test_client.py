"""The client against a real TLS XML-RPC server: faults mapped, connection errors named."""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import threading
import xmlrpc.client
from collections.abc import Iterator
from http.server import HTTPServer
from pathlib import Path
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer

import pytest

from jobmon.client import Client, binary, make_ssl_context
from jobmon.errors import AccessDenied, AuthError, NotFound, RelayError, RemoteFault, UsageError


class _Handler(SimpleXMLRPCRequestHandler):
    rpc_paths = ("/clarens",)


@pytest.fixture()
def server(pki) -> Iterator[str]:
    srv = SimpleXMLRPCServer(("127.0.0.1", 0), requestHandler=_Handler, logRequests=False, allow_none=False)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(pki.host.cert_path), str(pki.host.key_path))
    ctx.load_verify_locations(cafile=str(pki.ca_file))
    ctx.verify_mode = ssl.CERT_REQUIRED
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)

    def whoami() -> dict:
        return {"dn": "me", "admin": False, "auth": "certificate"}

    def fault(code: int, message: str) -> None:
        raise xmlrpc.client.Fault(code, message)

    srv.register_function(whoami, "jobmon.whoami")
    srv.register_function(fault, "test.fault")
    srv.register_function(lambda: xmlrpc.client.Binary(b"\x00bytes"), "test.binary")
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"https://127.0.0.1:{srv.server_address[1]}/clarens"
    srv.shutdown()
    HTTPServer.server_close(srv)


def make(pki, url: str, ca: Path | None = None) -> Client:
    return Client(url, make_ssl_context(pki.alice.cert_path, pki.alice.key_path, ca or pki.ca_file, None), 10)


def test_call_and_binary(pki, server: str) -> None:
    c = make(pki, server)
    assert c.whoami()["dn"] == "me"
    assert binary(c.call("test.binary")) == b"\x00bytes"


@pytest.mark.parametrize("code,cls,exit_code", [
    (500, NotFound, 5), (401, AccessDenied, 4), (300, AuthError, 3), (502, RemoteFault, 1),
    (4242, RemoteFault, 1)])
def test_faults_become_jobmon_errors(pki, server: str, code: int, cls: type, exit_code: int) -> None:
    with pytest.raises(cls) as err:
        make(pki, server).call("test.fault", code, f"message {code}")
    assert f"message {code}" in str(err.value) and err.value.exit_code == exit_code


def test_connection_refused_names_the_url(pki) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"https://127.0.0.1:{port}/clarens"
    with pytest.raises(RelayError) as err:
        make(pki, url).whoami()
    assert url in str(err.value) and err.value.exit_code == 6


def test_untrusted_relay_certificate(pki, server: str) -> None:
    with pytest.raises(AuthError, match="not trusted"):
        make(pki, server, ca=pki.foreign_ca_file).whoami()


def test_http_url_refused_as_a_usage_error() -> None:
    with pytest.raises(UsageError, match="https") as e:
        Client("http://x/clarens", ssl.create_default_context())
    assert e.value.exit_code == 2


def test_missing_certificate_file(tmp_path: Path) -> None:
    with pytest.raises(AuthError):
        make_ssl_context(tmp_path / "none.pem", None, None, None)


def test_bad_credential_files_are_named_in_one_clear_message(pki, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(AuthError, match=r"cannot load the certificate .*junk\.pem: not a usable PEM file"):
        make_ssl_context(junk, None, None, None)
    with pytest.raises(AuthError, match=r"cannot read .*: Is a directory"):
        make_ssl_context(tmp_path, None, None, None)
    with pytest.raises(AuthError, match=r"cannot load the trusted CAs .*junk\.pem"):
        make_ssl_context(pki.alice.cert_path, pki.alice.key_path, junk, None)
    # and the real ones load
    assert isinstance(make_ssl_context(pki.alice.cert_path, pki.alice.key_path, pki.ca_file, None), ssl.SSLContext)


def test_unreadable_key_is_named(pki) -> None:
    """Root reads any file, so as root the check runs without the capabilities that allow it."""
    import shutil
    import subprocess
    import sys
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="jm-key-"))
    d.chmod(0o755)
    cert, key = d / "cert.pem", d / "key.pem"
    cert.write_bytes(pki.alice.cert_path.read_bytes())
    cert.chmod(0o644)
    key.write_bytes(pki.alice.key_path.read_bytes())
    key.chmod(0)
    code = (
        "import sys\n"
        "from jobmon.client import make_ssl_context\n"
        "from jobmon.errors import AuthError\n"
        "try:\n"
        f"    make_ssl_context({str(cert)!r}, {str(key)!r}, None, None)\n"
        "except AuthError as e:\n"
        "    print(e)\n"
    )
    prefix = []
    if os.geteuid() == 0:
        caps = "-dac_override,-dac_read_search"
        prefix = ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}"]
    try:
        res = subprocess.run(prefix + [sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=60, cwd=d)
    finally:
        shutil.rmtree(d)
    assert "Permission denied" in res.stdout and "key.pem" in res.stdout, res.stdout + res.stderr


# ---------------------------------------------------------------- one connection, lean HTTP
class _KeepAliveHandler(SimpleXMLRPCRequestHandler):
    rpc_paths = ("/clarens",)
    protocol_version = "HTTP/1.1"


class _CountingServer(SimpleXMLRPCServer):
    connections = 0

    def get_request(self):  # type: ignore[no-untyped-def]
        type(self).connections += 1
        return super().get_request()


@pytest.fixture()
def keepalive(pki) -> Iterator[tuple[str, type[_CountingServer]]]:
    class Counting(_CountingServer):
        connections = 0

    srv = Counting(("127.0.0.1", 0), requestHandler=_KeepAliveHandler, logRequests=False, allow_none=False)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(pki.host.cert_path), str(pki.host.key_path))
    ctx.load_verify_locations(cafile=str(pki.ca_file))
    ctx.verify_mode = ssl.CERT_REQUIRED
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.register_function(lambda job: {"id": job, "state": "running"}, "jobmon.status")
    srv.register_function(lambda n: xmlrpc.client.Binary(b"\xff" * n), "test.blob")
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"https://127.0.0.1:{srv.server_address[1]}/clarens", Counting
    srv.shutdown()
    HTTPServer.server_close(srv)


def test_one_tls_connection_for_all_calls_of_a_client(pki, keepalive) -> None:
    url, server = keepalive
    c = make(pki, url)
    for i in range(5):
        assert c.status(f"1.{i}") == {"id": f"1.{i}", "state": "running"}
    assert binary(c.call("test.blob", 300000)) == b"\xff" * 300000
    c.timeout = 30.0  # a command may change the timeout between calls: same connection
    assert c.status("2.0")["id"] == "2.0"
    assert server.connections == 1


def test_a_relay_that_closes_after_each_answer_is_reconnected(pki, server: str) -> None:
    c = make(pki, server)  # SimpleXMLRPCServer answers HTTP/1.0 and closes
    assert [c.whoami()["dn"] for _ in range(3)] == ["me"] * 3


def test_configured_cas_first_and_the_full_store_only_if_needed(pki, keepalive) -> None:
    url, server = keepalive
    first = make_ssl_context(pki.alice.cert_path, pki.alice.key_path, pki.ca_file, None, system_cas=False)
    assert first.cert_store_stats()["x509_ca"] == 1  # the system store is not loaded
    full = make_ssl_context(pki.alice.cert_path, pki.alice.key_path, pki.ca_file, None)
    system = ssl.create_default_context().cert_store_stats()["x509_ca"]
    assert full.cert_store_stats()["x509_ca"] == 1 + system
    # the relay's CA is not among the configured ones: one more handshake with the full store
    wrong = make_ssl_context(pki.alice.cert_path, pki.alice.key_path, pki.foreign_ca_file, None,
                             system_cas=False)
    used: list[bool] = []

    def full_store() -> ssl.SSLContext:
        used.append(True)
        return make_ssl_context(pki.alice.cert_path, pki.alice.key_path, pki.ca_file, None)

    c = Client(url, wrong, 10, fallback_context=full_store)
    assert c.status("1.0")["state"] == "running" and c.status("1.1")["state"] == "running"
    assert used == [True] and server.connections == 2  # the refused handshake, then one for both calls


def test_not_trusted_by_either_store_is_the_same_error(pki, server: str) -> None:
    wrong = make_ssl_context(pki.alice.cert_path, pki.alice.key_path, pki.foreign_ca_file, None,
                             system_cas=False)

    def full_store() -> ssl.SSLContext:
        return make_ssl_context(pki.alice.cert_path, pki.alice.key_path, pki.foreign_ca_file, None)

    with pytest.raises(AuthError, match="certificate not trusted") as err:
        Client(server, wrong, 10, fallback_context=full_store).whoami()
    assert err.value.exit_code == 3


def test_from_settings_trusts_the_configured_ca_without_the_system_store(pki, keepalive, tmp_path: Path) -> None:
    from jobmon.settings import load_settings

    url, _ = keepalive
    s = load_settings({"relay": url, "cert": str(pki.alice.cert_path), "key": str(pki.alice.key_path),
                       "ca_file": str(pki.ca_file), "state_dir": str(tmp_path)}, env={}, condor_param=lambda k: None)
    c = Client.from_settings(s)
    assert c.context.cert_store_stats()["x509_ca"] == 1
    assert c.status("3.0")["id"] == "3.0"


@contextlib.contextmanager
def _raw_https(pki, answer: bytes) -> Iterator[str]:
    """A TLS server that reads one request and writes ``answer`` (then closes)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(pki.host.cert_path), str(pki.host.key_path))
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)

    def serve() -> None:
        while True:
            try:
                conn, _ = lsock.accept()
            except OSError:
                return
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    data = b""
                    while b"\r\n\r\n" not in data:
                        data += tls.recv(65536)
                    head, _, body = data.partition(b"\r\n\r\n")
                    length = int([h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")][0]
                                 .split(b":")[1])
                    while len(body) < length:
                        body += tls.recv(65536)
                    tls.sendall(answer)
            except (OSError, IndexError, ValueError):
                pass

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"https://127.0.0.1:{lsock.getsockname()[1]}/clarens"
    finally:
        lsock.close()


OK_BODY = xmlrpc.client.dumps(({"dn": "me"},), methodresponse=True).encode()


@pytest.mark.parametrize("answer,error,text", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\ngarbage", RelayError, "answered garbage"),
    (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", RelayError, "HTTP 404 Not Found"),
    (b"", RelayError, "Remote end closed connection without response"),
    (b"SSH-2.0-OpenSSH\r\n", RelayError, "not an HTTP answer"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 900\r\n\r\n<?xml", RelayError, "cut short"),
])
def test_bad_answers_are_relay_errors(pki, answer: bytes, error: type, text: str) -> None:
    with _raw_https(pki, answer) as url, pytest.raises(error, match=text) as err:
        make(pki, url).whoami()
    assert err.value.exit_code == 6 and url in str(err.value)


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(OK_BODY) + OK_BODY + b"\r\n0\r\n\r\n",
    b"HTTP/1.0 200 OK\r\n\r\n" + OK_BODY,
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
    % len(OK_BODY) + OK_BODY,
])
def test_chunked_unsized_and_continued_answers_are_read(pki, answer: bytes) -> None:
    with _raw_https(pki, answer) as url:
        assert make(pki, url).whoami() == {"dn": "me"}


def test_url_forms() -> None:
    from jobmon.client import split_url

    assert split_url("https://relay.example.org:8443/clarens") == ("relay.example.org", 8443, "/clarens", None)
    assert split_url("https://relay.example.org") == ("relay.example.org", 443, "/RPC2", None)
    assert split_url("https://[::1]:8443/clarens") == ("::1", 8443, "/clarens", None)
    host, port, path, auth = split_url("https://jobmon-job:s%40cret@r:1/clarens")
    assert (host, port, path, auth) == ("r", 1, "/clarens", "Basic am9ibW9uLWpvYjpzQGNyZXQ=")
    with pytest.raises(UsageError):
        split_url("https://r:port/clarens")


@pytest.mark.parametrize("who", ["expired", "foreign", "server_only"])
def test_a_refused_client_certificate_is_an_auth_error(pki, keepalive, who: str) -> None:
    """The relay refuses the certificate in the TLS 1.3 handshake, which the client learns when it
    reads (the alert, or the connection's end); the client says so (exit 3), as xmlrpc.client did."""
    url, _ = keepalive
    cred = getattr(pki, who)
    c = Client(url, make_ssl_context(cred.cert_path, cred.key_path, pki.ca_file, None, system_cas=False), 10)
    with pytest.raises(AuthError, match="TLS handshake failed") as err:
        c.whoami()
    assert err.value.exit_code == 3


def _json(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


@pytest.mark.parametrize("body,error,text", [
    (b'{"result": {"batch": "b1"}, "error": null, "id": 1}', None, ""),
    (b'{"result": null, "error": {"code": 500, "message": "no job 9.9"}, "id": 1}', NotFound, "no job 9.9"),
    (b'{"result": null, "error": "boom", "id": 1}', RelayError, "answered garbage"),
    (b'[1, 2]', RelayError, "answered garbage"),
    (b'<?xml version="1.0"?>', RelayError, "answered garbage"),
])
def test_json_calls_share_the_error_boundary(pki, body: bytes, error: type | None, text: str) -> None:
    """``call_json`` (the fan-out's encoding): the same faults and errors as an XML-RPC call."""
    with _raw_https(pki, _json(body)) as url:
        if error is None:
            assert make(pki, url).call_json("jobmon.execMany", {"cluster": 1}, ["true"], {}) == {"batch": "b1"}
            return
        with pytest.raises(error, match=text):
            make(pki, url).call_json("jobmon.execMany", {"cluster": 1}, ["true"], {})
