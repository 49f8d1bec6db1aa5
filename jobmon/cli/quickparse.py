"""The plain command lines of the quick commands, parsed without argparse.

argparse costs a quick command about 5 ms: its import, a gettext look-up for
every option it adds, building the parser. For the command lines people
actually type -- global options spelled out in full (``--relay URL`` or
``--relay=URL``, ``-v``), one of exec/tail/ps/ls/status, its options spelled
out, its positional arguments in one run -- :func:`parse` returns the very
namespace argparse would (``vars()`` equal; tests/jobmon/test_cli_quick.py
compares the two). Anything else returns None and argparse parses the line,
so ``--help``, abbreviations, errors and argparse's quirks stay argparse's.

Two argparse rules kept here: an option given after the command overrides the
same option before it (the sub-parser's namespace is copied over the main
one, ``-v`` counts included), and a positional argument cut off from the
others by an option is not taken (argparse reports it; so do we, by not
parsing it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import SimpleNamespace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: global options that take a value (their dest is the name without dashes, - as _)
GLOBAL_VALUE_OPTIONS = ("--relay", "--state-dir", "--cert", "--key", "--proxy", "--ca-dir", "--ca-file",
                        "--config")

# option -> (dest, converter or None for a flag)
_Options = dict[str, tuple[str, "Callable[[str], Any] | None"]]
_EXEC: _Options = {"--timeout": ("timeout", float), "--shell": ("shell", None)}
_TAIL: _Options = {"-f": ("follow", None), "--follow": ("follow", None), "-n": ("lines", int),
                   "--lines": ("lines", int)}
_STATUS: _Options = {"--json": ("json", None), "--watch": ("watch", None)}

# command -> (its options, names of its positionals, how many required, "rest" takes the others,
#             defaults)
COMMANDS: dict[str, tuple[_Options, tuple[str, ...], int, bool, dict[str, Any]]] = {
    "exec": (_EXEC, ("job", "argv"), 1, True, {"timeout": None, "shell": False, "progress": None, "argv": []}),
    "tail": (_TAIL, ("job", "path"), 1, False, {"follow": False, "lines": 10, "path": "@stdout"}),
    "ps": ({}, ("job",), 1, False, {}),
    "ls": ({}, ("job", "path"), 1, False, {"path": "."}),
    "status": (_STATUS, ("job",), 1, False, {"json": False, "watch": False}),
}


def _dest(option: str) -> str:
    return option.lstrip("-").replace("-", "_")


def _global(argv: Sequence[str], i: int, ns: dict[str, Any]) -> int | None:
    """Take the global option at ``argv[i]`` into ``ns``: the next index, or None if it is not one."""
    a = argv[i]
    if a in GLOBAL_VALUE_OPTIONS:
        if i + 1 >= len(argv) or argv[i + 1].startswith("-"):
            return None
        ns[_dest(a)] = argv[i + 1]
        return i + 2
    name, eq, value = a.partition("=")
    if eq and name in GLOBAL_VALUE_OPTIONS:
        ns[_dest(name)] = value
        return i + 1
    if a == "--verbose" or (len(a) > 1 and a[0] == "-" and set(a[1:]) == {"v"}):
        ns["verbose"] = ns.get("verbose", 0) + (1 if a == "--verbose" else len(a) - 1)
        return i + 1
    return None


def parse(argv: Sequence[str]) -> SimpleNamespace | None:
    """argparse's namespace for ``argv`` (without the ``--`` part), or None: let argparse parse it."""
    top: dict[str, Any] = {}
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        nxt = _global(argv, i, top)
        if nxt is None:
            return None
        i = nxt
    if i >= len(argv) or argv[i] not in COMMANDS:
        return None
    command = argv[i]
    options, names, required, rest, defaults = COMMANDS[command]
    sub: dict[str, Any] = dict(defaults)
    positionals: list[str] = []
    runs = 0
    after_positional = False
    i += 1
    while i < len(argv):
        a = argv[i]
        if not a.startswith("-"):
            runs += 0 if after_positional else 1
            after_positional = True
            positionals.append(a)
            i += 1
            continue
        after_positional = False
        name, eq, value = a.partition("=")
        if a in options:
            dest, convert = options[a]
            if convert is None:
                sub[dest] = True
                i += 1
                continue
            if i + 1 >= len(argv) or argv[i + 1].startswith("-"):
                return None
            value, i = argv[i + 1], i + 2
        elif eq and name.startswith("--") and name in options and options[name][1] is not None:
            dest, convert = options[name]
            i += 1
        else:
            nxt = _global(argv, i, sub)
            if nxt is None:
                return None
            i = nxt
            continue
        try:
            sub[dest] = convert(value)  # type: ignore[misc]
        except ValueError:
            return None
    if runs > 1 or len(positionals) < required or (len(positionals) > len(names) and not rest):
        return None
    for n, value in zip(names, positionals):
        sub[n] = value
    if rest:
        sub[names[-1]] = positionals[len(names) - 1:]
    return SimpleNamespace(**{**top, "command": command, **sub})
