"""The quick path of the CLI (issue 12): what it imports, its one-command parser, its exit.

Timings are the benchmark's business (benchmarks/cli_latency.py); these tests
fail when the quick path pulls in what it must not, or behaves differently.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from jmtest.relay import jobmon_command
from jmtest.relay import test_env as subprocess_env

from jobmon.cli import main as cli
from jobmon.errors import UsageError

#: never on the way of exec/tail/ps/ls/status: the HTCondor bindings, the web and template
#: stack, rich, cryptography (no certificate is made), and the stdlib's HTTP/mail stack
FORBIDDEN = ("htcondor2", "htcondor", "classad2", "classad", "jinja2", "aiohttp", "rich", "cryptography",
             "OpenSSL", "http.client", "xmlrpc.client", "email", "dataclasses", "relay", "jobmon.pki",
             "typing", "json", "threading", "jobmon.fanout")


def imported_by(args: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run the real `jobmon` command under -X importtime: its result and every module it imported."""
    full_env = dict(subprocess_env() if env is None else env, PYTHONPROFILEIMPORTTIME="1")
    res = subprocess.run([*jobmon_command(), *args], capture_output=True, text=True, timeout=60, env=full_env,
                         stdin=subprocess.DEVNULL)
    names = {line.rsplit("|", 1)[1].strip() for line in res.stderr.splitlines() if line.startswith("import time:")}
    names.discard("package")  # the header line
    return res, names


def forbidden(names: set[str]) -> list[str]:
    return sorted(n for n in names if any(n == f or n.startswith(f + ".") for f in FORBIDDEN))


def test_exec_help_imports_nothing_heavy() -> None:
    res, names = imported_by(["exec", "--help"])
    assert res.returncode == 0 and "-- CMD" in res.stdout
    assert "jobmon.cli.main" in names  # the measurement works
    assert forbidden(names) == []


@pytest.mark.parametrize("args", [["status", "1.0"], ["exec", "1.0", "--", "ls", "-l"], ["tail", "-f", "1.0"],
                                  ["ps", "1.0"], ["ls", "1.0", "sub"]])
def test_quick_commands_up_to_the_connection_import_nothing_heavy(args: list[str], tmp_path: Path) -> None:
    """Up to the relay call (refused here: nothing listens), with the local PKI made beforehand."""
    import socket

    from jobmon import pki

    state = tmp_path / "state"
    pki.ensure_local_pki(state, "someone")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = subprocess_env({"HOME": str(tmp_path), "JOBMON_STATE_DIR": str(state),
                    "JOBMON_RELAY_URL": f"https://127.0.0.1:{port}/clarens"})
    env.pop("JOBMON_NO_CONDOR_CONFIG")  # as a user runs it (this machine has no HTCondor configuration)
    if Path(f"/tmp/x509up_u{os.getuid()}").exists():
        pytest.skip("a real proxy exists on this machine")
    res, names = imported_by(args, env)
    assert res.returncode == 6 and "connection refused" in res.stderr, res.stderr[-500:]
    assert "jobmon.client" in names and "ssl" in names
    assert forbidden(names) == [], "HTCondor configuration present?" if "htcondor2" in names else ""


def test_the_console_flushes_before_it_ends_a_quick_command() -> None:
    res = subprocess.run([*jobmon_command(), "status", "not-a-job"], capture_output=True, text=True, timeout=60,
                         env=subprocess_env(), stdin=subprocess.DEVNULL)
    assert res.returncode == 2
    assert res.stderr.startswith("jobmon: 'not-a-job' is not a job id") and res.stderr.count("\n") == 1
    res = subprocess.run([sys.executable, "-m", "jobmon.cli.main", "ls", "1.0", "a", "b"], capture_output=True,
                         text=True, timeout=60, env=subprocess_env(), stdin=subprocess.DEVNULL)
    assert res.returncode == 2 and "unrecognized arguments: b" in res.stderr


SAME_PARSE = [
    ["exec", "1.0", "ls"],
    ["exec", "--timeout", "5", "--shell", "12", "x"],
    ["--relay", "https://r:1/clarens", "exec", "1.0", "ls"],
    ["--relay=https://r:1/clarens", "-vv", "--state-dir", "/s", "tail", "-f", "-n", "3", "1.0", "@stderr"],
    ["--cert", "exec", "--key", "k", "status", "1.0", "--json"],  # a certificate file named "exec"
    ["ps", "1.0", "--cert", "c", "--key", "k", "-v"],
    ["ls", "1.0"],
    ["ls", "1.0", "sub/dir", "--ca-dir", "/ca"],
    ["status", "7", "--watch"],
    ["q", "--all"],
    ["-v", "--verbose", "nodes", "drain", "n1"],
]


@pytest.mark.parametrize("argv", SAME_PARSE)
def test_one_command_parser_parses_as_the_whole_parser(argv: list[str]) -> None:
    only = cli._command_of(argv)
    assert only is not None
    assert vars(cli.build_parser(only=only).parse_args(argv)) == vars(cli.build_parser().parse_args(argv))


@pytest.mark.parametrize("argv", [
    ["--rel", "https://r:1/clarens", "exec", "1.0", "ls"],  # an abbreviation: argparse decides
    ["-h", "exec"], ["--help"], ["-vh", "exec"], [], ["--cert"], ["bogus", "1.0"], ["--config", "c"],
])
def test_uncertain_command_lines_get_the_whole_parser(argv: list[str]) -> None:
    assert cli._command_of(argv) is None


@pytest.mark.parametrize("argv", [["exec"], ["tail", "-n", "x", "1.0"], ["status", "1.0", "--bogus"],
                                  ["ls", "1.0", "a", "b"]])
def test_usage_errors_are_the_same(argv: list[str]) -> None:
    def error(parser: object) -> str:
        with pytest.raises(UsageError) as err:
            parser.parse_args(argv)  # type: ignore[attr-defined]
        return str(err.value)

    assert error(cli.build_parser(only=cli._command_of(argv))) == error(cli.build_parser())


def test_plain_ps_table() -> None:
    from jobmon.cli.common import plain_table

    lines = plain_table(("PID", "S", "COMMAND"), [("1", "S", "init"), ("12345", "R", "python x.py")], right=("PID",))
    assert lines == ["  PID  S  COMMAND", "    1  S  init", "12345  R  python x.py"]


# ---------------------------------------------------------------- quickparse agrees with argparse
_WHOLE: list[object] = []


def argparse_namespace(argv: list[str]) -> dict[str, object] | None:
    if not _WHOLE:
        _WHOLE.append(cli.build_parser())
    try:
        return vars(_WHOLE[0].parse_args(argv))  # type: ignore[attr-defined]
    except (UsageError, SystemExit):
        return None


PLAIN = [
    ["exec", "1.0"], ["exec", "12"], ["exec", "--timeout", "20", "--shell", "1.0"], ["exec", "1.0", "--timeout=2.5"],
    ["exec", "1.0", "grep", "x"], ["tail", "1.0"], ["tail", "-f", "1.0"], ["tail", "-n", "3", "1.0", "log"],
    ["tail", "1.0", "@stderr", "--lines=7", "-f"], ["ps", "1.0"], ["ls", "1.0"], ["ls", "1.0", "sub/dir"],
    ["status", "1.0"], ["status", "7", "--json"], ["status", "--watch", "7"],
    ["--relay", "https://r:1/clarens", "-v", "exec", "1.0"], ["-vv", "--state-dir=/s", "ps", "1.0", "-v"],
    ["--cert", "c.pem", "--key", "k.pem", "--ca-file", "ca.pem", "ls", "1.0", "--ca-dir", "/ca", "--relay=x"],
    ["--relay", "a", "status", "1.0", "--relay", "b"], ["--proxy", "p", "--config", "c.toml", "tail", "1.0"],
]


@pytest.mark.parametrize("argv", PLAIN)
def test_plain_lines_skip_argparse_and_mean_the_same(argv: list[str]) -> None:
    from jobmon.cli import quickparse

    quick = quickparse.parse(argv)
    assert quick is not None
    assert vars(quick) == argparse_namespace(argv)


def test_quickparse_never_disagrees_with_argparse() -> None:
    """Random command lines: whatever quickparse takes, argparse takes the same way; every line
    argparse refuses, quickparse leaves to it."""
    import random

    from jobmon.cli import quickparse

    glob = [["-v"], ["-vv"], ["--verbose"], ["--relay", "u"], ["--relay=u"], ["--cert", "exec"], ["--state-dir=s"],
            ["--config", "c"], ["--rel", "u"], ["-h"], ["--relay"], ["--ca-dir", "-x"]]
    mine = {"exec": [["--timeout", "1.5"], ["--timeout=2"], ["--timeout", "x"], ["--shell"], ["--tim", "1"]],
            "tail": [["-f"], ["--follow"], ["-n", "3"], ["-n", "-3"], ["--lines=2"], ["-fn", "2"], ["-n3"]],
            "ps": [["--json"]], "ls": [["-l"]], "status": [["--json"], ["--watch"], ["--json=1"]]}
    words = ["1.0", "7", "x", "log", "-", "ls", "exec"]
    rng = random.Random(12)
    taken = 0
    for _ in range(6000):
        command = rng.choice(list(mine))
        argv = [w for _ in range(rng.randint(0, 2)) for w in rng.choice(glob)] + [command]
        for _ in range(rng.randint(0, 5)):
            kind = rng.random()
            argv += [rng.choice(words)] if kind < 0.5 else rng.choice(mine[command]) if kind < 0.8 else rng.choice(glob)
        quick = quickparse.parse(argv)
        if quick is None:
            continue
        taken += 1
        assert vars(quick) == argparse_namespace(argv), argv
    assert taken > 500
