"""``jobmon``: the command users and admins type. One error boundary lives here.

main() catches only ``JobmonError``: it prints ``jobmon: <message>`` on stderr
and returns the error's exit code (table in jobmon/errors.py and docs/CLI.md).
``-v`` shows debug logs and tracebacks; Ctrl-C exits 130.

A look inside a job should feel instant (docs/PERFORMANCE.md, "CLI latency"),
so this module imports almost nothing itself: a command's module is imported
when it runs; the plain command lines of the QUICK commands are parsed without
argparse (jobmon/cli/quickparse.py), other lines with just the named command's
sub-parser when the command is plain to see (:func:`_command_of`), else with
the whole parser (jobmon/cli/parser.py); the QUICK commands configure
``logging`` only with ``-v`` and end through :func:`console`'s fast exit.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from jobmon.cli.quickparse import GLOBAL_VALUE_OPTIONS
from jobmon.errors import JobmonError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

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


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argparse parser of the whole command line, or of the command ``only`` (jobmon/cli/parser.py)."""
    from jobmon.cli import parser

    return parser.build_parser(only)


def _command_of(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names, when that is certain before parsing: only exact global
    options (no abbreviations, no ``-h``) precede it. Parsing with just that command's
    sub-parser then gives the same result as the whole parser, and building the other
    fifteen costs ~15 ms (argparse looks up translations for every option)."""
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in GLOBAL_VALUE_OPTIONS:
            i += 2
        elif a.startswith("--") and a.split("=", 1)[0] in GLOBAL_VALUE_OPTIONS and "=" in a:
            i += 1
        elif a == "--verbose" or (len(a) > 1 and a[0] == "-" and set(a[1:]) == {"v"}):
            i += 1
        elif not a.startswith("-"):
            return a if a in COMMANDS else None
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
    from jobmon.cli import quickparse

    args: argparse.Namespace | None = quickparse.parse(argv)  # type: ignore[assignment]
    if args is None or (command is not None and args.command != "exec"):
        parser = build_parser(only=_command_of(argv))
        args = parser.parse_args(argv)
        if command is not None and args.command != "exec":
            parser.error("'--' is only used by 'jobmon exec JOB -- CMD [ARGS...]'")
    if command is not None:
        args.argv = list(args.argv) + command
    if not args.command:
        build_parser().print_help()
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
    handler cost ~8 ms (docs/PERFORMANCE.md) and have nothing to do, as such a command
    keeps no state and the kernel closes its connection as ``close()`` would. Every
    other command, one that left a thread running, and a flush that fails exit the
    ordinary way.
    """
    argv = sys.argv[1:]
    code = main(argv)
    quick = _legacy(argv) or _command_of(argv[:argv.index("--")] if "--" in argv else argv) in QUICK
    threading = sys.modules.get("threading")
    if quick and (threading is None or threading.active_count() == 1):
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
