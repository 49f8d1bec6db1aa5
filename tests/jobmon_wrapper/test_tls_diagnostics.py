"""A daemon that cannot verify its relay says why in its log, and the payload never notices."""

from __future__ import annotations

import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

from jobmon_wrapper.transport import tls_failure


def test_tls_failure_names_the_reason_and_what_was_trusted() -> None:
    err = ssl.SSLCertVerificationError(1, "certificate verify failed")
    err.verify_message = "unable to get local issuer certificate"  # type: ignore[attr-defined]
    line = tls_failure(err, None, None)
    assert line is not None and line.startswith("cannot verify the relay's certificate: unable to get local issuer")
    assert "no jobmon-ca.pem was shipped" in line
    err.verify_message = "certificate has expired"  # type: ignore[attr-defined]
    assert "certificate has expired (trusted: ./jobmon-ca.pem)" in str(tls_failure(err, "./jobmon-ca.pem", None))
    assert tls_failure(ConnectionRefusedError(111, "refused"), None, None) is None


def test_unknown_ca_is_logged_and_the_payload_runs_as_without_us(python_ends: str, wrapper_pyz: Path,
                                                                   fake_relay: Any, relay_env: dict[str, str],
                                                                   tmp_path: Path) -> None:
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    # no jobmon-ca.pem, no JOBMON_CA_FILE: the test CA is in no trust store the wrapper loads
    env = {k: v for k, v in relay_env.items() if k != "JOBMON_CA_FILE"}
    log = tmp_path / "daemon.log"
    env.update(JOBMON_RELAY_URL=fake_relay.url, JOBMON_LOG_FILE=str(log))
    payload = "echo out; echo err >&2; while [ ! -e stop ]; do sleep 0.05; done; exit 5"
    proc = subprocess.Popen([python_ends, str(wrapper_pyz), "--", "sh", "-c", payload], cwd=str(sandbox),
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not (log.exists() and "cannot verify" in log.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        (sandbox / "stop").touch()
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 5 and out == b"out\n" and err == b"err\n"
    text = log.read_text()
    assert f"relay {fake_relay.url}: cannot verify the relay's certificate: " in text
    assert "certificate" in text.split("cannot verify the relay's certificate: ", 1)[1]  # OpenSSL's reason
    assert "(trusted: the system trust store" in text and "no jobmon-ca.pem was shipped" in text
    assert not fake_relay.registered.is_set()
