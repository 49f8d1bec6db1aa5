"""Parse a submit description with HTCondor's own parser, with errors that name the line.

``htcondor2.Submit`` says only ``parse_up_to_q_line() failed`` for a bad line,
so on failure we find the first line whose prefix no longer parses and report
it with the parser's message. The queue statement is checked too (item data,
count), because the bindings defer those errors until the items are read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import htcondor2

from jobmon.errors import SubmitFileError
from jobmon.pools.local_jobs import queue_count, split_arguments

_QUEUE_RE = re.compile(r"^\s*queue(\s|$)", re.IGNORECASE)


@dataclass
class ParsedSubmit:
    submit: htcondor2.Submit
    text: str
    name: str              # file name for messages
    queue_text: str        # the original queue statement (with inline items), "" if none

    @property
    def body_lines(self) -> list[str]:
        return self.text.splitlines()


def parse_submit_file(path: str | Path) -> ParsedSubmit:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise SubmitFileError(f"cannot read submit file {p}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise SubmitFileError(f"submit file {p} is not text: {exc}") from exc
    return parse_submit_text(text, str(p))


def parse_submit_text(text: str, name: str = "<submit description>") -> ParsedSubmit:
    lines = text.splitlines()
    try:
        submit = htcondor2.Submit(text)
    except (ValueError, RuntimeError) as exc:
        raise _locate(lines, name, str(exc)) from exc
    queue_at = next((i for i, line in enumerate(lines) if _QUEUE_RE.match(line)), None)
    queue_text = "\n".join(lines[queue_at:]) if queue_at is not None else ""
    where = f"{name}, line {queue_at + 1}" if queue_at is not None else name
    try:
        submit.itemdata()
        queue_count(submit)
    except (ValueError, RuntimeError) as exc:
        raise SubmitFileError(f"{where}: {exc}: {lines[queue_at].strip() if queue_at is not None else ''}") from exc
    except SubmitFileError as exc:
        raise SubmitFileError(f"{where}: {exc}") from exc
    for key in submit.keys():
        value = submit.get(key) or ""
        if key.startswith("MY.") and not value.strip():
            raise SubmitFileError(f"{name}, line {_line_of(lines, key[3:])}: +{key[3:]} has no value")
        if key.lower() == "arguments":
            try:
                split_arguments(value)
            except SubmitFileError as exc:
                raise SubmitFileError(f"{name}, line {_line_of(lines, key)}: {exc}") from exc
    if not any(k.lower() == "executable" for k in submit.keys()):
        raise SubmitFileError(f"{name}: no executable given", hint="add `executable = PROGRAM`")
    return ParsedSubmit(submit, text, name, queue_text)


def _line_of(lines: list[str], key: str) -> int:
    pat = re.compile(r"^\s*(\+|MY\.)?" + re.escape(key) + r"\s*=", re.IGNORECASE)
    return next((i + 1 for i, line in enumerate(lines) if pat.match(line)), 0)


def _locate(lines: list[str], name: str, message: str) -> SubmitFileError:
    """The first line at which the description stops parsing."""
    for i, line in enumerate(lines):
        if _QUEUE_RE.match(line):
            break
        try:
            htcondor2.Submit("\n".join(lines[: i + 1]) + "\n")
        except (ValueError, RuntimeError):
            return SubmitFileError(f"{name}, line {i + 1}: {_explain(line, message)}: {line.strip()}")
    return SubmitFileError(f"{name}: {message}")


def _explain(line: str, message: str) -> str:
    stripped = line.strip()
    if "=" not in stripped and not stripped.lower().startswith(("if", "else", "endif", "elif",
                                                                "include", "use", "error",
                                                                "warning")):
        return f"syntax error ({message}; expected KEY = VALUE)"
    return f"syntax error ({message})"
