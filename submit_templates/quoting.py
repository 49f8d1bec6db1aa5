"""HTCondor's quoting rules for ``arguments`` and ``environment``, as pure functions.

The "new" syntax (HTCondor manual, *condor_submit*, "arguments"):

* the whole value is surrounded by double quotes; a literal double quote is
  written twice (``""``);
* white space separates arguments; an argument containing white space is put
  in single quotes; inside single quotes a literal single quote is written
  twice (``''``).

On top of that the submit language expands macros *before* the value is
quoted: ``$(NAME)``, ``$ENV(NAME)``, ``$RANDOM_CHOICE(...)`` and friends are
replaced while the file is parsed, and ``$$(NAME)`` is kept for match time.
:func:`escape_macros` writes ``$`` so that ``htcondor2.Submit(...).expand``
gives back exactly the text we meant (the rules were found by
round-tripping random strings through ``htcondor2.Submit``; see
tests/submit_templates/test_quoting.py):

* a lone ``$`` in front of ``(`` or ``NAME(`` becomes ``$(DOLLAR)``;
* ``$$`` is kept by the submit parser as it is;
* a run of three or more ``$`` in front of ``NAME(`` keeps all but its last
  ``$``, which becomes ``$(DOLLAR)``;
* a ``$`` anywhere else is literal already.

A ``$$(NAME)`` that reaches the job ad is HTCondor's match-time
substitution (the schedd replaces it from the machine ad when the job is
matched); that is HTCondor's feature, and it is deliberately kept.

The job ad stores ``Arguments`` in canonical "V2 raw" form, without the outer
double quotes: ``--mode exit0 --label hello' 'world`` (see
shared/condor-fixtures/README.md); :func:`split_ad_arguments` reads that.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from jobmon.errors import UsageError

__all__ = [
    "escape_macros",
    "quote_argument",
    "quote_arguments",
    "quote_environment",
    "split_ad_arguments",
    "split_arguments",
    "split_environment",
]

_MACRO_AHEAD = re.compile(r"(\$+)(?=(\(|[A-Za-z_][A-Za-z0-9_]*\())")
_NEEDS_QUOTES = re.compile(r"[\s'\"]")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


def escape_macros(text: str) -> str:
    """Write ``text`` so the submit parser's macro expansion gives it back unchanged.

    >>> escape_macros("cost: $5")
    'cost: $5'
    >>> escape_macros("$(Cluster)")
    '$(DOLLAR)(Cluster)'
    >>> escape_macros("$ENV(HOME)")
    '$(DOLLAR)ENV(HOME)'
    >>> escape_macros("$$(Name)")
    '$$(Name)'
    """

    def one_run(m: re.Match[str]) -> str:
        run = m.group(1)
        if len(run) == 1:
            return "$(DOLLAR)"
        if len(run) == 2 or m.group(2) == "(":
            return run
        return run[:-1] + "$(DOLLAR)"

    return _MACRO_AHEAD.sub(one_run, text)


def _check_line(text: str, what: str) -> None:
    if "\n" in text or "\r" in text or "\x00" in text:
        raise UsageError(
            f"{what} {text!r} contains a line break or NUL",
            hint="a submit file value is one line; pass such data in a file",
        )


def quote_argument(arg: str) -> str:
    """One argument in V2 raw form (no outer double quotes, no macro escaping).

    >>> quote_argument("plain")
    'plain'
    >>> quote_argument("hello world")
    "'hello world'"
    >>> quote_argument("it's")
    "'it''s'"
    >>> quote_argument("")
    "''"
    """
    _check_line(arg, "argument")
    if arg and not _NEEDS_QUOTES.search(arg):
        return arg
    return "'" + arg.replace("'", "''") + "'"


def _v2_quoted(raw_words: Sequence[str]) -> str:
    body = " ".join(raw_words).replace('"', '""')
    return '"' + escape_macros(body) + '"'


def quote_arguments(argv: Sequence[str]) -> str:
    """The value of a submit file's ``arguments``, outer double quotes included.

    >>> quote_arguments(["--label", "hello world"])
    '"--label \\'hello world\\'"'
    >>> print(quote_arguments(["say", 'a "quoted" word', "it's"]))
    "say 'a ""quoted"" word' 'it''s'"
    >>> print(quote_arguments(["$(Cluster)", "$HOME"]))
    "$(DOLLAR)(Cluster) $HOME"
    >>> quote_arguments([])
    '""'
    """
    if isinstance(argv, str):
        raise TypeError("quote_arguments takes a list of arguments, not a string")
    return _v2_quoted([quote_argument(a) for a in argv])


def quote_environment(env: Mapping[str, str]) -> str:
    """The value of a submit file's ``environment``, outer double quotes included.

    >>> print(quote_environment({"A": "1", "B": "x y", "C": "it's"}))
    "A=1 B='x y' C='it''s'"
    >>> quote_environment({})
    '""'
    """
    words = []
    for name, value in env.items():
        if not _ENV_NAME.match(name):
            raise UsageError(
                f"{name!r} is not a valid environment variable name",
                hint="use letters, digits and underscores, not starting with a digit",
            )
        _check_line(value, f"environment value of {name}")
        if value and not _NEEDS_QUOTES.search(value):
            words.append(f"{name}={value}")
        else:
            words.append(f"{name}='" + value.replace("'", "''") + "'")
    return _v2_quoted(words)


def split_ad_arguments(raw: str) -> list[str]:
    """Split V2 raw arguments (the job ad's ``Arguments``, no outer double quotes).

    >>> split_ad_arguments("--mode exit0 --label hello' 'world")
    ['--mode', 'exit0', '--label', 'hello world']
    >>> split_ad_arguments("'it''s' '' x")
    ["it's", '', 'x']
    """
    words: list[str] = []
    cur: list[str] = []
    have_word = False
    in_quote = False
    i = 0
    n = len(raw)
    while i < n:
        c = raw[i]
        if in_quote:
            if c == "'":
                if i + 1 < n and raw[i + 1] == "'":
                    cur.append("'")
                    i += 2
                    continue
                in_quote = False
            else:
                cur.append(c)
        elif c == "'":
            in_quote = True
            have_word = True
        elif c.isspace():
            if have_word:
                words.append("".join(cur))
                cur = []
                have_word = False
        else:
            cur.append(c)
            have_word = True
        i += 1
    if in_quote:
        raise UsageError(f"unterminated single quote in arguments {raw!r}")
    if have_word:
        words.append("".join(cur))
    return words


def _unquote_v2(value: str) -> str:
    """Strip the outer double quotes of a V2 value and undouble ``""``."""
    body: list[str] = []
    i = 1
    n = len(value)
    while i < n:
        c = value[i]
        if c == '"':
            if i + 1 < n and value[i + 1] == '"':
                body.append('"')
                i += 2
                continue
            rest = value[i + 1 :]
            if rest.strip():
                raise UsageError(f"text after the closing double quote in {value!r}: {rest.strip()!r}")
            return "".join(body)
        body.append(c)
        i += 1
    raise UsageError(f"missing closing double quote in {value!r}")


def split_arguments(value: str) -> list[str]:
    """Split a submit file's ``arguments`` value into argv, new or old syntax.

    Pass the value after macro expansion (``htcondor2.Submit(...).expand("arguments")``).
    New syntax starts with a double quote; the old one separates words by
    white space and writes a double quote as ``\\"``.

    >>> split_arguments('"--mode exit0 --label \\'hello world\\'"')
    ['--mode', 'exit0', '--label', 'hello world']
    >>> split_arguments('--mode exit0 say\\\\"hi\\\\"')
    ['--mode', 'exit0', 'say"hi"']
    """
    text = value.strip()
    _check_line(text, "arguments")
    if text.startswith('"'):
        return split_ad_arguments(_unquote_v2(text))
    words = []
    for word in text.split():
        if re.search(r'(?<!\\)"', word):
            raise UsageError(
                f"unescaped double quote in old-syntax arguments {value!r}",
                hint='write \\" or use the new syntax: arguments = "a \'b c\'"',
            )
        words.append(word.replace('\\"', '"'))
    return words


def split_environment(value: str) -> dict[str, str]:
    """Parse a submit file's ``environment`` value (new syntax, or old ``A=1;B=2``).

    >>> split_environment('"A=1 B=\\'x y\\'"')
    {'A': '1', 'B': 'x y'}
    >>> split_environment("A=1;B=2")
    {'A': '1', 'B': '2'}
    """
    text = value.strip()
    if text.startswith('"'):
        words = split_ad_arguments(_unquote_v2(text))
    else:
        words = [w for w in text.split(";") if w.strip()]
    env: dict[str, str] = {}
    for word in words:
        name, sep, val = word.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"environment entry {word!r} is not NAME=VALUE")
        env[name.strip()] = val
    return env
