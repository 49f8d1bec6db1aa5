"""``jobmon``: the command users and admins type. One error boundary lives here.

main() catches only ``JobmonError``: it prints ``jobmon: <message>`` on stderr
and returns the error's exit code (table in jobmon/errors.py and docs/CLI.md).
``-v`` shows debug logs and tracebacks; Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback
from collections.abc import Sequence

from jobmon.errors import JobmonError, UsageError

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


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message}", hint=f"see `{self.prog} --help`")


def _global_options(with_config: bool) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
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


def build_parser() -> argparse.ArgumentParser:
    common = _global_options(with_config=True)
    no_config = _global_options(with_config=False)
    parser = _Parser(prog="jobmon", parents=[common],
                     description="Look inside running HTCondor jobs (see docs/CLI.md).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def cmd(name: str, help: str, parents: list[argparse.ArgumentParser] | None = None) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, parents=parents or [common])  # type: ignore[arg-type]

    p = cmd("relay", "run the relay (with the embedded local pool by default)", [no_config])
    p.add_argument("--listen", metavar="HOST:PORT", help="address to listen on (port 0: any free port)")
    p.add_argument("--pool", choices=("local", "condor"), help="pool to run jobs in (default local)")
    p.add_argument("--slots", type=int, metavar="N", help="local pool slots (default: CPU count)")
    p.add_argument("--config", dest="relay_config", metavar="FILE", help="relay config file (TOML)")
    p.add_argument("--submit-root", action="append", dest="submit_roots", metavar="DIR",
                   help="a directory jobs may be submitted from (repeatable; default: your home)")

    p = cmd("submit", "submit an HTCondor submit file with the JobMon wrapper injected")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--pool", choices=("local", "condor"), help="where to submit (default local)")
    p.add_argument("--dry-run", action="store_true", help="print the rewritten description, submit nothing")

    p = cmd("q", "list your jobs")
    p.add_argument("job", nargs="?", metavar="CLUSTER", help="only this cluster")
    p.add_argument("--all", action="store_true", help="everyone's jobs (admins)")
    p.add_argument("--constraint", metavar="EXPR", help="ClassAd expression, as condor_q")
    p.add_argument("--json", action="store_true")
    p.add_argument("--watch", action="store_true", help="refresh until the jobs end or Ctrl-C")

    p = cmd("status", "status of one job (or every job of a cluster)")
    p.add_argument("job", metavar="JOB")
    p.add_argument("--json", action="store_true")
    p.add_argument("--watch", action="store_true", help="live progress until the job ends or Ctrl-C")

    p = cmd("exec", "run a command in a job's sandbox (or in every job of a cluster)")
    p.add_argument("job", metavar="JOB")
    p.add_argument("--timeout", type=float, metavar="S", help="seconds before the command is killed")
    p.add_argument("--shell", action="store_true", help="run CMD through /bin/sh -c (if the site allows)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="a cluster's progress line on stderr (default: when stderr is a terminal)")
    p.add_argument("argv", nargs="*", metavar="-- CMD [ARGS...]",
                   help="the command; everything after -- is passed on untouched")

    p = cmd("tail", "print (and follow) a file of a job; default the payload's stdout")
    p.add_argument("-f", "--follow", action="store_true", help="follow until the job ends or Ctrl-C")
    p.add_argument("-n", "--lines", type=int, default=10, metavar="N", help="last N lines (default 10)")
    p.add_argument("job", metavar="JOB")
    p.add_argument("path", nargs="?", default="@stdout", metavar="PATH",
                   help="sandbox path, @stdout or @stderr (default @stdout)")

    p = cmd("ps", "process tree of a job")
    p.add_argument("job", metavar="JOB")
    p = cmd("ls", "list a directory of a job's sandbox")
    p.add_argument("job", metavar="JOB")
    p.add_argument("path", nargs="?", default=".", metavar="PATH")

    p = cmd("rm", "remove a job (or every job of a cluster)")
    p.add_argument("job", metavar="JOB")
    p.add_argument("--reason", default="via jobmon rm", help="recorded as RemoveReason")

    p = cmd("nodes", "list execute nodes; drain, undrain, turn off or on (admins); how to add one")
    p.add_argument("action", nargs="?", default="list",
                   choices=("list", "drain", "undrain", "off", "on", "add"))
    p.add_argument("node", nargs="?", metavar="NODE")
    p.add_argument("--json", action="store_true")

    p = cmd("audit", "the audit log (admins)")
    p.add_argument("--job", metavar="J")
    p.add_argument("--user", metavar="DN")
    p.add_argument("--since", metavar="T", help="epoch seconds, ISO time, or an age such as 2h / 30m / 1d")
    p.add_argument("--json", action="store_true")

    p = cmd("template", "submit templates with the wrapper injected")
    p.add_argument("action", choices=("list", "render"))
    p.add_argument("name", nargs="?", metavar="NAME")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="values")
    p.add_argument("--credential", action="store_true",
                   help="ask the relay for a per-job credential (and its CA when jobs need it) and fill them in")

    cmd("wrapper-path", "print where the wrapper zipapp is")
    cmd("whoami", "the DN the relay sees for you")
    cmd("web", "print a one-time login link for the web pages")
    cmd("demo", "run the whole story on this machine in under a minute")
    return parser


def _legacy(argv: Sequence[str]) -> bool:
    return any(a == "--serverURL" or a.startswith("--serverURL=") for a in argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = sum(1 for a in argv if a in ("-v", "--verbose") or (a.startswith("-v") and set(a[1:]) == {"v"}))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        if _legacy(argv):
            from jobmon.cli import cmd_legacy

            return cmd_legacy.run(argv)
        return _dispatch(argv)
    except JobmonError as exc:
        if verbose:
            traceback.print_exc()
        print(f"jobmon: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


def _dispatch(argv: list[str]) -> int:
    from jobmon.cli.common import Context
    from jobmon.settings import load_settings

    parser = build_parser()
    # Everything after the first "--" is the remote command, never our options:
    # `jobmon exec JOB --shell -- CMD` and `jobmon exec JOB -- CMD --shell` both mean what they say.
    command: list[str] | None = None
    if "--" in argv:
        cut = argv.index("--")
        argv, command = argv[:cut], argv[cut + 1:]
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
    settings = load_settings(flags)
    module, func = COMMANDS[args.command]
    mod = importlib.import_module(f"jobmon.cli.{module}")
    return int(getattr(mod, func)(Context(settings, args)))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
