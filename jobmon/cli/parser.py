"""The ``jobmon`` command line, as argparse parses it (see docs/CLI.md).

Built when a command line needs argparse: every command but the plain lines of
the quick ones (jobmon/cli/quickparse.py). ``build_parser(only=NAME)`` builds
just that command's sub-parser, which parses a line naming NAME as the whole
parser would (jobmon.cli.main._command_of decides when that is certain);
building all sixteen costs ~15 ms, argparse looking up translations for every
option.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from jobmon.errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter, measuring the terminal as ``shutil.get_terminal_size`` does
    but without importing shutil (and with it bz2, lzma, zlib): argparse makes one
    formatter per option it adds."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         _terminal_columns() - 2 if width is None else width)


def _terminal_columns() -> int:
    import os

    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message}", hint=f"see `{self.prog} --help`")


def _global_options(with_config: bool) -> argparse.ArgumentParser:
    p = _Parser(add_help=False)
    g = p.add_argument_group("global options")
    S = argparse.SUPPRESS
    g.add_argument("--relay", metavar="URL", default=S, help="relay URL (else JOBMON_RELAY_URL, else the local relay)")
    g.add_argument("--state-dir", metavar="DIR", dest="state_dir", default=S,
                   help="state directory (else JOBMON_STATE_DIR, else ~/.jobmon)")
    g.add_argument("--cert", metavar="FILE", default=S, help="client certificate (PEM)")
    g.add_argument("--key", metavar="FILE", default=S, help="key of --cert")
    g.add_argument("--proxy", metavar="FILE", default=S, help="grid proxy file (else X509_USER_PROXY, /tmp/x509up_u<uid>)")
    g.add_argument("--ca-dir", metavar="DIR", dest="ca_dir", default=S, help="trusted CA directory (else X509_CERT_DIR)")
    g.add_argument("--ca-file", metavar="FILE", dest="ca_file", default=S, help="trusted CA bundle (PEM)")
    if with_config:
        g.add_argument("--config", metavar="FILE", default=S, help="CLI config file (else ~/.jobmon/config.toml)")
    g.add_argument("-v", "--verbose", action="count", default=S, help="debug logs and tracebacks")
    return p


def _relay(p: argparse.ArgumentParser) -> None:
    p.add_argument("--listen", metavar="HOST:PORT", help="address to listen on (port 0: any free port)")
    p.add_argument("--pool", choices=("local", "condor"), help="pool to run jobs in (default local)")
    p.add_argument("--slots", type=int, metavar="N", help="local pool slots (default: CPU count)")
    p.add_argument("--config", dest="relay_config", metavar="FILE", help="relay config file (TOML)")
    p.add_argument("--submit-root", action="append", dest="submit_roots", metavar="DIR",
                   help="a directory jobs may be submitted from (repeatable; default: your home)")


def _submit(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE")
    p.add_argument("--pool", choices=("local", "condor"), help="where to submit (default local)")
    p.add_argument("--dry-run", action="store_true", help="print the rewritten description, submit nothing")


def _q(p: argparse.ArgumentParser) -> None:
    p.add_argument("job", nargs="?", metavar="CLUSTER", help="only this cluster")
    p.add_argument("--all", action="store_true", help="everyone's jobs (admins)")
    p.add_argument("--constraint", metavar="EXPR", help="ClassAd expression, as condor_q")
    p.add_argument("--json", action="store_true")
    p.add_argument("--watch", action="store_true", help="refresh until the jobs end or Ctrl-C")


def _status(p: argparse.ArgumentParser) -> None:
    p.add_argument("job", metavar="JOB")
    p.add_argument("--json", action="store_true")
    p.add_argument("--watch", action="store_true", help="live progress until the job ends or Ctrl-C")


def _exec(p: argparse.ArgumentParser) -> None:
    p.add_argument("job", metavar="JOB")
    p.add_argument("--timeout", type=float, metavar="S", help="seconds before the command is killed")
    p.add_argument("--shell", action="store_true", help="run CMD through /bin/sh -c (if the site allows)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="a cluster's progress line on stderr (default: when stderr is a terminal)")
    p.add_argument("argv", nargs="*", metavar="-- CMD [ARGS...]",
                   help="the command; everything after -- is passed on untouched")


def _tail(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--follow", action="store_true", help="follow until the job ends or Ctrl-C")
    p.add_argument("-n", "--lines", type=int, default=10, metavar="N", help="last N lines (default 10)")
    p.add_argument("job", metavar="JOB")
    p.add_argument("path", nargs="?", default="@stdout", metavar="PATH",
                   help="sandbox path, @stdout or @stderr (default @stdout)")


def _ps(p: argparse.ArgumentParser) -> None:
    p.add_argument("job", metavar="JOB")


def _ls(p: argparse.ArgumentParser) -> None:
    p.add_argument("job", metavar="JOB")
    p.add_argument("path", nargs="?", default=".", metavar="PATH")


def _rm(p: argparse.ArgumentParser) -> None:
    p.add_argument("job", metavar="JOB")
    p.add_argument("--reason", default="via jobmon rm", help="recorded as RemoveReason")


def _nodes(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", nargs="?", default="list",
                   choices=("list", "drain", "undrain", "off", "on", "add"))
    p.add_argument("node", nargs="?", metavar="NODE")
    p.add_argument("--json", action="store_true")


def _audit(p: argparse.ArgumentParser) -> None:
    p.add_argument("--job", metavar="J")
    p.add_argument("--user", metavar="DN")
    p.add_argument("--since", metavar="T", help="epoch seconds, ISO time, or an age such as 2h / 30m / 1d")
    p.add_argument("--json", action="store_true")


def _template(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("list", "render"))
    p.add_argument("name", nargs="?", metavar="NAME")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="values")
    p.add_argument("--credential", action="store_true",
                   help="ask the relay for a per-job credential (and its CA when jobs need it) and fill them in")


def _no_arguments(p: argparse.ArgumentParser) -> None:
    pass


# command -> (help, its own arguments); the order is the order of `jobmon --help`
PARSERS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "relay": ("run the relay (with the embedded local pool by default)", _relay),
    "submit": ("submit an HTCondor submit file with the JobMon wrapper injected", _submit),
    "q": ("list your jobs", _q),
    "status": ("status of one job (or every job of a cluster)", _status),
    "exec": ("run a command in a job's sandbox (or in every job of a cluster)", _exec),
    "tail": ("print (and follow) a file of a job; default the payload's stdout", _tail),
    "ps": ("process tree of a job", _ps),
    "ls": ("list a directory of a job's sandbox", _ls),
    "rm": ("remove a job (or every job of a cluster)", _rm),
    "nodes": ("list execute nodes; drain, undrain, turn off or on (admins); how to add one", _nodes),
    "audit": ("the audit log (admins)", _audit),
    "template": ("submit templates with the wrapper injected", _template),
    "wrapper-path": ("print where the wrapper zipapp is", _no_arguments),
    "whoami": ("the DN the relay sees for you", _no_arguments),
    "web": ("print a one-time login link for the web pages", _no_arguments),
    "demo": ("run the whole story on this machine in under a minute", _no_arguments),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``only``, just that command's sub-parser (see main._command_of)."""
    common = _global_options(with_config=True)
    no_config = _global_options(with_config=False)
    parser = _Parser(prog="jobmon", parents=[common],
                     description="Look inside running HTCondor jobs (see docs/CLI.md).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (text, add_arguments) in PARSERS.items():
        if only is None or name == only:
            parents = [no_config] if name == "relay" else [common]
            add_arguments(sub.add_parser(name, help=text, description=text, parents=parents))  # type: ignore[arg-type]
    return parser
