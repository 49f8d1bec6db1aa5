"""``jobmon``: the command users and admins type. One error boundary lives here.

main() catches only ``JobmonError``: it prints ``jobmon: <message>`` on stderr
and returns the error's exit code (table in jobmon/errors.py and docs/CLI.md).
``-v`` shows debug logs and tracebacks; Ctrl-C exits 130.

A look inside a job should feel instant (docs/PERFORMANCE.md, "CLI latency"),
so this module imports almost nothing itself: a command's module is imported
when it runs, only that command's sub-parser is built when the command is
plain to see (:func:`_command_of`), and the QUICK commands configure
``logging`` only with ``-v``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from jobmon.errors import JobmonError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# command name -> module (jobmon.cli.cmd_<module>) and function
COMMANDS = {
    "relay": ("cmd_relay", "run"),
    "submit": ("cmd_submit", "run"),
    "q": ("cmd_q", "run_q"),
    "status": ("cmd_q", "run_status"),
    "exec": ("cmd_exec", "run"),
    "tail": ("cmd_tail", "run"),
    "ps": ("cmd_files", "run_ps"),
    "ls": ("cmd_files", "run_ls"),
    "rm": ("cmd_rm", "run"),
    "nodes": ("cmd_admin", "run_nodes"),
    "audit": ("cmd_admin", "run_audit"),
    "template": ("cmd_misc", "run_template"),
    "wrapper-path": ("cmd_misc", "run_wrapper_path"),
    "whoami": ("cmd_misc", "run_whoami"),
    "web": ("cmd_misc", "run_web"),
    "demo": ("cmd_misc", "run_demo"),
}
#: the look-inside commands: they set up ``logging`` (an ~8 ms import) only with -v,
#: and nothing on their path logs otherwise
QUICK = frozenset({"exec", "tail", "ps", "ls", "status"})
LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


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
#: global options that take a value (see _global_options)
_VALUE_OPTIONS = ("--relay", "--state-dir", "--cert", "--key", "--proxy", "--ca-dir", "--ca-file", "--config")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``only``, just that command's sub-parser (see :func:`_command_of`)."""
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


def _command_of(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names, when that is certain before parsing: only exact global
    options (no abbreviations, no ``-h``) precede it. Parsing with just that command's
    sub-parser then gives the same result as the whole parser, and building the other
    fifteen costs ~15 ms (argparse looks up translations for every option)."""
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in _VALUE_OPTIONS:
            i += 2
        elif a.startswith("--") and a.split("=", 1)[0] in _VALUE_OPTIONS and "=" in a:
            i += 1
        elif a == "--verbose" or (len(a) > 1 and a[0] == "-" and set(a[1:]) == {"v"}):
            i += 1
        elif not a.startswith("-"):
            return a if a in PARSERS else None
        else:
            return None
    return None


def _legacy(argv: Sequence[str]) -> bool:
    return any(a == "--serverURL" or a.startswith("--serverURL=") for a in argv)


def _setup_logging(verbose: int) -> None:
    import logging

    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format=LOG_FORMAT,
                        stream=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = sum(1 for a in argv if a in ("-v", "--verbose") or (a.startswith("-v") and set(a[1:]) == {"v"}))
    if verbose:
        _setup_logging(verbose)
    try:
        if _legacy(argv):
            from jobmon.cli import cmd_legacy

            return cmd_legacy.run(argv)
        return _dispatch(argv)
    except JobmonError as exc:
        if verbose:
            import traceback

            traceback.print_exc()
        print(f"jobmon: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


def _dispatch(argv: list[str]) -> int:
    # Everything after the first "--" is the remote command, never our options:
    # `jobmon exec JOB --shell -- CMD` and `jobmon exec JOB -- CMD --shell` both mean what they say.
    command: list[str] | None = None
    if "--" in argv:
        cut = argv.index("--")
        argv, command = argv[:cut], argv[cut + 1:]
    parser = build_parser(only=_command_of(argv))
    args = parser.parse_args(argv)
    if command is not None:
        if args.command != "exec":
            parser.error("'--' is only used by 'jobmon exec JOB -- CMD [ARGS...]'")
        args.argv = list(args.argv) + command
    if not args.command:
        parser.print_help()
        return 2
    flags = {k: getattr(args, k, None) for k in
             ("relay", "state_dir", "cert", "key", "proxy", "ca_dir", "ca_file", "config", "verbose")}
    if args.command in ("submit", "relay"):
        flags["pool"] = getattr(args, "pool", None)
    if not flags["verbose"] and args.command not in QUICK:
        _setup_logging(0)  # (with -v, main() has set it up)
    from importlib import import_module

    from jobmon.cli.common import Context
    from jobmon.settings import load_settings

    settings = load_settings(flags)
    module, func = COMMANDS[args.command]
    mod = import_module(f"jobmon.cli.{module}")
    return int(getattr(mod, func)(Context(settings, args)))


def console() -> None:
    """The ``jobmon`` program (the console script, ``python -m jobmon.cli.main``): main(), exit.

    After a QUICK command (or the seed's form) the process ends with ``os._exit`` once
    stdout and stderr are flushed: the interpreter's clean-up and OpenSSL's at-exit
    handler cost ~8 ms (docs/PERFORMANCE.md) and have nothing to do. Such a command ran
    no threads and registered no ``atexit`` handler, and the kernel closes its
    connection as ``close()`` would. Every other command, and a flush that fails, exits
    the ordinary way.
    """
    argv = sys.argv[1:]
    code = main(argv)
    if _legacy(argv) or _command_of(argv[:argv.index("--")] if "--" in argv else argv) in QUICK:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            sys.exit(code)
        import os

        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    console()
