"""HAProxy as the relay's TLS front, for benchmarks/relay_load.py ``--front haproxy``.

The configuration is relay/haproxy.cfg.example with the benchmark's paths: TLS with
client certificates verified against the CA (proxies allowed through
``OPENSSL_ALLOW_PROXY_CERTS``), any ``X-JobMon-Client-*`` header a client sent deleted,
the verified ones set, plain HTTP to the relay's front socket. Several processes bind
the same port (SO_REUSEPORT, HAProxy's default on Linux): the per-process file
descriptor limit (20,000 here) is below what 10,000 daemons need through one process
(a client and a relay connection each).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "relay" / "haproxy.cfg.example"


def front_config(port: int, sock: str, paths: dict[str, str], tmp: Path, maxconn: int) -> Path:
    bundle = tmp / "host-bundle.pem"
    bundle.write_text(Path(paths["host"]).read_text() + Path(paths["host_key"]).read_text())
    text = EXAMPLE.read_text()
    for key, value in {"maxconn 20000": f"maxconn {maxconn}", "bind :8443": f"bind 127.0.0.1:{port}",
                       "/etc/jobmon/relay-host.pem": str(bundle), "/etc/jobmon/grid-cas.pem": paths["ca"],
                       "/run/jobmon-relay/front.sock": sock}.items():
        assert key in text, key
        text = text.replace(key, value)
    cfg = tmp / "haproxy.cfg"
    cfg.write_text(text)
    return cfg


def start_front(procs: int, port: int, sock: str, paths: dict[str, str], tmp: Path) -> list[subprocess.Popen[bytes]]:
    exe = shutil.which("haproxy")
    if exe is None:
        raise SystemExit("--front haproxy: haproxy is not installed (apt-get install haproxy)")
    cfg = front_config(port, sock, paths, tmp, maxconn=9900)
    check = subprocess.run([exe, "-c", "-q", "-f", str(cfg)], capture_output=True, text=True)
    if check.returncode != 0:
        raise SystemExit(f"haproxy refused {cfg}: {check.stderr.strip()}")
    out = [subprocess.Popen([exe, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL) for _ in range(procs)]
    time.sleep(1.0)
    return out
