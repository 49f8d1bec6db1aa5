"""Attach mode (the original JobMon's ``jobmon-daemon``): only the daemon, no payload.

``jobmon-daemon --jobname NAME --serverURL URL [--certfile F --keyfile F]``
serves the current directory under the job name NAME until it gets TERM or
INT (then it calls ``jobmon.finish``). ``jobmon-daemon --joblist --serverURL
URL --certfile F --keyfile F`` prints the jobs the relay shows to that
certificate (``jobmon.joblist``).
"""

import argparse
import os
import resource
import signal
import sys
import threading
import time
import xmlrpc.client
from typing import Any, List, Optional

from jobmon_wrapper import config as config_mod
from jobmon_wrapper import log
from jobmon_wrapper.transport import RelayClient, basic_auth, make_context, read_credential


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jobmon-daemon",
                                description="Serve the current directory to a JobMon relay.")
    p.add_argument("--jobname", help="the name this directory is registered under")
    p.add_argument("--serverURL", dest="server_url",
                   help="relay URL, e.g. https://relay.example.org:8443/clarens")
    p.add_argument("--certfile", help="client certificate (or proxy) PEM file")
    p.add_argument("--keyfile", help="key for --certfile (default: the same file)")
    p.add_argument("--cafile", help="CA file that signed the relay's certificate")
    p.add_argument("--credential", help="per-job credential file")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="diagnostics on stderr instead of .jobmon/daemon.log")
    p.add_argument("--joblist", action="store_true",
                   help="print the jobs registered at the relay and exit")
    return p


def _config(ns: argparse.Namespace) -> config_mod.Config:
    cfg = config_mod.load([], cwd=os.getcwd())
    cfg.sandbox = os.getcwd()
    if ns.server_url:
        cfg.relay = ns.server_url
    if ns.certfile:
        cfg.cert_file = ns.certfile
        cfg.key_file = ns.keyfile or ns.certfile
    if ns.cafile:
        cfg.ca_file = ns.cafile
    if ns.credential:
        cfg.credential = ns.credential
    if ns.verbose:
        cfg.verbose = True
    cfg.argv = ["jobmon-daemon", "--jobname", ns.jobname or ""]
    return cfg


def joblist(cfg: config_mod.Config, out: Any = None) -> int:
    out = sys.stdout if out is None else out
    context = None
    if cfg.relay and cfg.relay.startswith("https:"):
        context = make_context(cfg.ca_file, cfg.ca_dir, cfg.cert_file, cfg.key_file)
    token = read_credential(cfg.credential)
    client = RelayClient(cfg.relay or "", context, basic_auth(token) if token else None, 30.0)
    jobs = client.call("jobmon.joblist", {})
    for job in jobs:
        out.write("%-14s %-10s %-9s %s\n" % (job.get("id", "?"), job.get("state", "?"),
                                             "connected" if job.get("connected") else "-",
                                             job.get("name") or job.get("cmd") or ""))
    return 0


def main(argv: Optional[List[str]] = None) -> None:
    ns = _parser().parse_args(argv)
    cfg = _config(ns)
    if not cfg.relay:
        sys.stderr.write("jobmon-daemon: --serverURL (or JOBMON_RELAY_URL) is required\n")
        sys.exit(2)
    if ns.joblist:
        try:
            sys.exit(joblist(cfg))
        except (OSError, xmlrpc.client.Error) as exc:
            sys.stderr.write("jobmon-daemon: %s: %s\n" % (cfg.relay, exc))
            sys.exit(1)
    if not ns.jobname:
        sys.stderr.write("jobmon-daemon: --jobname is required\n")
        sys.exit(2)
    from jobmon_wrapper.daemon import Daemon
    from jobmon_wrapper.progress import Progress

    started = time.time()
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.configure(cfg.sandbox, cfg.verbose, cfg.log_file)
    progress = Progress(cfg.progress_regex, cfg.progress_file)
    daemon = Daemon(cfg, payload_pid=os.getpid(), start_time=started, progress=progress,
                    job=ns.jobname)
    daemon.start()
    while not stop.wait(1.0):
        pass
    ended = time.time()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    final = {"exit_code": 0, "wall_time": ended - started, "end_time": ended,
             "cpu_user": ru.ru_utime, "cpu_sys": ru.ru_stime, "max_rss_kb": int(ru.ru_maxrss)}
    try:
        daemon.finish(final, time.time() + 1.5)
    except Exception as exc:  # noqa: BLE001 - shutting down anyway
        log.say("finish failed: %s" % (exc,))
    log.cleanup()
    sys.exit(0)


if __name__ == "__main__":
    main()
