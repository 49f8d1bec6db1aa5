"""The client against a real TLS XML-RPC server: faults mapped, connection errors named."""

from __future__ import annotations

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
    res = subprocess.run(prefix + [sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=d)
    assert "Permission denied" in res.stdout and "key.pem" in res.stdout, res.stdout + res.stderr
