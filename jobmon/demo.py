"""`jobmon demo`: the whole story on this machine, in under a minute, with nothing to set up.

It starts a relay with the embedded local pool on a free port (in a temporary
state directory, with a private CA made for the occasion), submits a sample
event-processing job, looks inside it while it runs (status, `ls -l`, `ps`,
`tail` of its log), follows its progress until it ends, shows the output file
that came back and the exit code, stops the relay and exits 0.

``RelayProcess`` / ``start_relay`` (a relay in a subprocess, waited for until
it serves) are reused by the tests (tests/support/jmtest).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from jobmon.errors import JobmonError, RelayError


@dataclass
class RelayProcess:
    """A `jobmon relay` running in a subprocess."""

    proc: subprocess.Popen[bytes]
    url: str
    state_dir: Path
    log_path: Path

    @property
    def port(self) -> int:
        return int(self.url.split(":")[2].split("/")[0])

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, wait; SIGKILL if it does not stop in time. Returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)

    def cleanup(self) -> None:
        """Stop the relay and kill every local-pool job it left running."""
        self.stop()
        _kill_leftovers(self.state_dir)

    def __enter__(self) -> RelayProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def write_toml(path: Path, values: Mapping[str, Any]) -> Path:
    path.write_text("".join(f"{k} = {_toml_value(v)}\n" for k, v in values.items()))
    return path


def start_relay(
    state_dir: Path,
    *,
    config: Mapping[str, Any] | None = None,
    slots: int = 2,
    listen: str = "127.0.0.1:0",
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> RelayProcess:
    """Start `jobmon relay` (local pool) and wait until it accepts TLS connections."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-m", "jobmon.cli.main", "--state-dir", str(state_dir), "relay",
            "--listen", listen, "--slots", str(slots), *extra_args]
    if config:
        args += ["--config", str(write_toml(state_dir / "relay-test.toml", config))]
    record = state_dir / "relay.json"
    if record.exists():
        record.unlink()
    log_path = state_dir / "relay.log"
    full_env = dict(os.environ if env is None else env)
    full_env.pop("JOBMON_RELAY_URL", None)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=full_env,
                                stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    url = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RelayError(f"relay exited with status {proc.returncode}: "
                             f"{log_path.read_text(errors='replace')[-2000:]}")
        try:
            rec = json.loads(record.read_text())
            url = str(rec["url"]) if rec.get("pid") == proc.pid else ""
        except (OSError, ValueError, KeyError):
            url = ""
        if url:  # written once the port is bound (cmd_relay): no probe connection needed
            return RelayProcess(proc, url, state_dir, log_path)
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RelayError(f"relay did not start serving within {timeout:g} s: "
                     f"{log_path.read_text(errors='replace')[-2000:]}")


# ---------------------------------------------------------------------- demo
N_EVENTS = 48
DELAY = 0.25


class _Demo:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.step_no = 0

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def step(self, title: str, explain: str) -> None:
        self.step_no += 1
        self.say("")
        self.say(f"== Step {self.step_no}: {title}")
        for line in textwrap.wrap(explain, 76):
            self.say(f"   {line}")

    def run(self, base: list[str], *cmd: str) -> int:
        from jobmon.cli.main import main

        self.say(f"   $ jobmon {' '.join(cmd)}")
        self.out.flush()
        return main([*base, *cmd])


def run_demo(out: TextIO | None = None, keep: bool = False) -> int:
    out = out or sys.stdout
    d = _Demo(out)
    tmp = Path(tempfile.mkdtemp(prefix="jobmon-demo-"))
    # the job's directory lies in the relay's own submit area (state/submit/...), which a relay
    # accepts as a job directory whatever its submit_roots (by default: your home directory)
    state = tmp / "state"
    work = state / "submit" / "analysis"
    work.mkdir(parents=True)
    relay: RelayProcess | None = None
    started = time.monotonic()
    try:
        d.say("JobMon demo: look inside a running batch job, on this machine, with nothing to set up.")
        d.step("start a relay",
               "The relay is the one server everything talks to: jobs connect out to it, you ask it "
               "to run commands in them. It runs the jobs too (the embedded local pool), and made a "
               f"private certificate authority for you in {state}.")
        relay = start_relay(state, config={"heartbeat": 1.0, "poll_wait": 20.0}, slots=2)
        d.say(f"   relay is serving at {relay.url}")
        import getpass

        from jobmon import pki

        local = pki.ensure_local_pki(state, getpass.getuser())
        base = ["--state-dir", str(state), "--relay", relay.url, "--cert", str(local.user_cert),
                "--key", str(local.user_key), "--ca-file", str(local.ca_cert)]

        d.step("prepare an ordinary HTCondor job",
               f"In {work}: an input file of {N_EVENTS} events, the program that processes them, "
               "and a normal submit file. Nothing in it mentions the relay.")
        from jobmon.demo_job import SCRIPT

        shutil.copy2(SCRIPT, work / SCRIPT.name)
        (work / "events.txt").write_text("".join(f"{i} {10 + (i * 7) % 31}.{i % 10}\n"
                                                 for i in range(1, N_EVENTS + 1)))
        (work / "demo.sub").write_text(textwrap.dedent(f"""\
            # an ordinary submit file
            executable            = {SCRIPT.name}
            arguments             = "events.txt summary.txt --delay {DELAY}"
            transfer_input_files  = events.txt
            output                = demo.$(Cluster).$(Process).out
            error                 = demo.$(Cluster).$(Process).err
            log                   = demo.log
            +JobMonProgressRegex  = "Processed event ([0-9]+) of ([0-9]+)"
            queue
            """))
        for line in (work / "demo.sub").read_text().splitlines():
            d.say(f"   | {line}")

        d.step("submit it",
               "`jobmon submit` reads the file with HTCondor's own parser, puts the JobMon wrapper "
               "in front of the program, gives the job a private credential, and submits it.")
        _check(d.run(base, "submit", str(work / "demo.sub")), "submit")
        job = f"{_newest_cluster(base)}.0"

        d.step("wait until the job runs and its monitor connects",
               "The wrapper starts the program and connects out to the relay over HTTPS.")
        _wait_connected(base, job)
        _check(d.run(base, "status", job), "status")

        d.step("look inside the running job",
               "`jobmon exec` runs a command in the job's sandbox (its working directory) and "
               "returns the output and the exit code.")
        _check(d.run(base, "exec", job, "--", "ls", "-l"), "exec")
        d.say("")
        _check(d.run(base, "ps", job), "ps")

        d.step("read the job's log file while it is being written", "`jobmon tail` reads any file "
               "of the sandbox; with -f it follows it like tail -f.")
        _wait_file(base, job, "analysis.log")
        _check(d.run(base, "tail", "-n", "5", job, "analysis.log"), "tail")

        d.step("follow the progress until the job ends",
               "The wrapper reads 'Processed event N of M' from the program's output and reports "
               "it: done/total, rate and time left.")
        d.run(base, "status", "--watch", job)

        d.step("the results came back",
               "When the job ended, its new files were copied back next to the submit file, as "
               "HTCondor does.")
        summary = work / "summary.txt"
        deadline = time.monotonic() + 30  # the pool copies files back just after the job's own report
        while not summary.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if not summary.exists():
            raise RelayError(f"the output file {summary} did not come back")
        for line in summary.read_text().splitlines():
            d.say(f"   summary.txt | {line}")

        st = _client(base).status(job)
        code = st.get("exit_code")
        d.say(f"   job {job} {st.get('state')} with exit code {code}")

        d.step("stop the relay", "Done. Try it yourself: `jobmon relay` in one terminal, "
               "`jobmon submit your.sub`, `jobmon q`, `jobmon exec JOB -- ls`.")
        relay.stop()
        relay = None
        d.say(f"   demo finished in {time.monotonic() - started:.0f} s")
        return 0 if code == 0 else 1
    except JobmonError as exc:
        d.say(f"jobmon demo: {exc}")
        if relay is not None:
            d.say("--- relay log (last lines) ---")
            d.say(relay.log_text()[-3000:])
        return exc.exit_code
    finally:
        if relay is not None:
            relay.stop()
        _kill_leftovers(state)
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


def _check(code: int, what: str) -> None:
    if code != 0:
        raise RelayError(f"`jobmon {what}` failed (exit {code})")


def _client(base: list[str]) -> Any:
    from jobmon.client import Client, make_ssl_context

    opts = dict(zip(base[::2], base[1::2]))
    ctx = make_ssl_context(Path(opts["--cert"]), Path(opts["--key"]), Path(opts["--ca-file"]), None)
    return Client(opts["--relay"], ctx)


def _newest_cluster(base: list[str]) -> int:
    jobs = _client(base).joblist({})
    if not jobs:
        raise RelayError("the submitted job is not in the queue")
    return max(int(j["cluster"]) for j in jobs)


def _wait_connected(base: list[str], job: str, timeout: float = 30.0) -> None:
    client = _client(base)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = client.status(job)
        if st.get("connected"):
            return
        if st.get("state") in ("finished", "removed", "held"):
            raise RelayError(f"job {job} is {st.get('state')} before its monitor connected: {st}")
        time.sleep(0.2)
    raise RelayError(f"job {job}'s monitor did not connect within {timeout:g} s")


def _wait_file(base: list[str], job: str, path: str, timeout: float = 20.0) -> None:
    client = _client(base)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if float(client.call("jobmon.stat", job, path).get("size", 0)) > 200:
                return
        except JobmonError:
            pass
        time.sleep(0.2)


def _kill_leftovers(state: Path) -> None:
    """Kill jobs still running from the demo's local pool (only after a failure)."""
    db = state / "localpool" / "jobs.sqlite"
    if not db.exists():
        return
    import sqlite3

    import classad2

    try:
        with sqlite3.connect(str(db)) as conn:
            rows = conn.execute("SELECT ad FROM jobs WHERE status = 2").fetchall()
            meta = conn.execute("SELECT value FROM meta WHERE key = 'execute_dir'").fetchone()
    except sqlite3.Error:
        return
    for (text,) in rows:
        pid = classad2.parseOne(text).get("JobMonShepherdPid")
        if isinstance(pid, int):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
    if meta and Path(str(meta[0])).name.startswith("jobmon-execute-"):
        import shutil

        shutil.rmtree(str(meta[0]), ignore_errors=True)  # the killed jobs' scratch directories
