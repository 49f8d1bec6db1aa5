"""Job ads for the local pool, built from a parsed submit description.

``expand_procs`` turns one ``htcondor2.Submit`` (with its ``queue`` statement)
into one ``classad2.ClassAd`` per proc, using HTCondor's attribute names
(``Cmd``, ``Arguments``, ``Iwd``, ``Out``, ``Err``, ``UserLog``, ``JobPrio``,
every ``+Attr``) and macros expanded per proc (``$(Cluster)``, ``$(Process)``,
``$(ProcId)``, itemdata variables) by the submit language itself.
"""

from __future__ import annotations

import getpass
import glob
import os
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import classad2
import htcondor2

from jobmon.errors import SubmitFileError

_TIME = int

#: submit key → job ad attribute, for plain string values
_STRING_KEYS = {
    "output": "Out",
    "error": "Err",
    "input": "In",
    "log": "UserLog",
    "transfer_input_files": "TransferInput",
    "transfer_output_files": "TransferOutput",
    "environment": "Environment",
    "batch_name": "JobBatchName",
    "universe": "JobUniverseName",
}
_PATH_ATTRS = ("Out", "Err", "In", "UserLog")


def split_arguments(value: str) -> list[str]:
    """Split an HTCondor ``arguments`` value into argv.

    New syntax (surrounded by double quotes): whitespace separates, single
    quotes group, ``''`` inside single quotes is a quote, ``""`` is a double
    quote. Old syntax: whitespace separates, ``\\"`` is a double quote.

    >>> split_arguments('"--label \\'hello world\\' x""y"')
    ['--label', 'hello world', 'x"y']
    >>> split_arguments("a  b")
    ['a', 'b']
    >>> split_arguments('"it\\'\\'s"')
    ["it's"]
    >>> split_arguments('"\\'it\\'\\'s\\'"')
    ["it's"]
    """
    v = value.strip()
    if not (len(v) >= 2 and v[0] == '"' and v[-1] == '"'):
        return [a.replace('\\"', '"') for a in v.split()]
    return split_v2(v[1:-1].replace('""', '"'), value)


def split_v2(body: str, shown: str | None = None) -> list[str]:
    """Split the inside of a new-syntax argument string (as ``Arguments`` holds it)."""
    argv: list[str] = []
    cur: list[str] = []
    have = False
    i = 0
    in_quote = False
    while i < len(body):
        ch = body[i]
        if in_quote:
            if ch == "'":
                if i + 1 < len(body) and body[i + 1] == "'":
                    cur.append("'")
                    i += 2
                    continue
                in_quote = False
            else:
                cur.append(ch)
        elif ch == "'":
            if i + 1 < len(body) and body[i + 1] == "'":
                cur.append("'")
                have = True
                i += 2
                continue
            in_quote = True
            have = True
        elif ch.isspace():
            if have or cur:
                argv.append("".join(cur))
                cur, have = [], False
        else:
            cur.append(ch)
            have = True
        i += 1
    if in_quote:
        raise SubmitFileError(f"unbalanced single quote in arguments {shown or body}")
    if have or cur:
        argv.append("".join(cur))
    return argv


def canonical_arguments(argv: Iterable[str]) -> str:
    """The V2 form HTCondor stores in ``Arguments`` (without outer double quotes).

    >>> canonical_arguments(["--label", "hello world", "it's"])
    "--label 'hello world' 'it''s'"
    """
    out = []
    for a in argv:
        if a == "" or re.search(r"[\s'\"]", a):
            out.append("'" + a.replace("'", "''") + "'")
        else:
            out.append(a)
    return " ".join(out)


def split_environment(value: str) -> dict[str, str]:
    """``environment`` (new syntax ``"A=1 B='x y'"`` or old ``A=1;B=2``) as a dict."""
    v = value.strip()
    if not v:
        return {}
    if v.startswith('"'):
        items = split_arguments(v)
    else:
        items = [p for p in v.split(";") if p]
    env: dict[str, str] = {}
    for item in items:
        name, sep, val = item.partition("=")
        if sep:
            env[name] = val
    return env


def queue_items(submit: htcondor2.Submit, iwd: str) -> list[dict[str, str]]:
    """One dict of item variables per queue item (``[{}]`` for a plain ``queue N``)."""
    qargs = (submit.getQArgs() or "").strip()
    m = re.match(r"^(?:(\S+)\s+)?([\w,\s]+?)\s+matching\s+(?:(files|dirs)\s+)?(.+)$", qargs,
                 re.IGNORECASE)
    if m:  # glob relative to the submit directory, not the relay's cwd
        var = m.group(2).split(",")[0].strip() or "Item"
        names: list[str] = []
        for pattern in m.group(4).split():
            for path in sorted(glob.glob(os.path.join(iwd, pattern))):
                kind = m.group(3)
                if (kind == "files" and not os.path.isfile(path)) or (
                        kind == "dirs" and not os.path.isdir(path)):
                    continue
                names.append(os.path.relpath(path, iwd))
        return [{var: n} for n in names]
    data = submit.itemdata()
    if data is None:
        return [{}]
    return [{str(k): str(v) for k, v in item.items()} for item in data]


def queue_count(submit: htcondor2.Submit) -> int:
    """The N of ``queue N`` (or ``queue N x from ...``), macros expanded; 1 if absent."""
    qargs = (submit.getQArgs() or "").strip()
    if not qargs:
        return 1
    first = qargs.split()[0]
    if re.search(r"\s(from|in|matching)\b", " " + qargs) and not re.match(r"^[\d$]", first):
        return 1
    probe = htcondor2.Submit(dict(submit.items()))
    probe["JobMonQueueCount"] = first
    text = probe.expand("JobMonQueueCount").strip()
    try:
        n = int(text)
    except ValueError as exc:
        raise SubmitFileError(f"queue count {first!r} is not a number ({text!r})") from exc
    if n < 0:
        raise SubmitFileError(f"queue count {n} is negative")
    return n


def expand_procs(
    submit: htcondor2.Submit, *, cluster: int, iwd: str, owner: str | None = None,
    owner_dn: str | None = None, hostname: str = "localhost", count: int | None = None,
    now: float | None = None,
) -> list[classad2.ClassAd]:
    """Job ads of every proc the description queues, for cluster ``cluster``."""
    items = queue_items(submit, iwd)
    per_item = queue_count(submit) if count is None else count
    base = dict(submit.items())
    owner = owner or getpass.getuser()
    qdate = _TIME(now if now is not None else time.time())
    ads: list[classad2.ClassAd] = []
    proc = 0
    for item in items:
        for step in range(per_item):
            s = htcondor2.Submit(base)
            macros = {"Cluster": cluster, "ClusterId": cluster, "Process": proc, "ProcId": proc,
                      "Step": step, "Row": len(ads), "Item": item.get("Item", "")}
            for k, v in {**macros, **item}.items():
                s[k] = str(v)
            ads.append(_ad_for(s, set(base), cluster, proc, iwd, owner, owner_dn, hostname, qdate))
            proc += 1
    return ads


def _ad_for(s: htcondor2.Submit, keys: set[str], cluster: int, proc: int, iwd: str, owner: str,
            owner_dn: str | None, hostname: str, qdate: int) -> classad2.ClassAd:
    def get(key: str) -> str | None:
        for k in keys:
            if k.lower() == key:
                return str(s.expand(k))
        return None

    initialdir = get("initialdir")
    job_iwd = os.path.normpath(os.path.join(iwd, initialdir)) if initialdir else iwd
    exe = get("executable")
    if not exe:
        raise SubmitFileError("no executable given", hint="add `executable = PROGRAM`")
    ad = classad2.ClassAd()
    ad["ClusterId"] = cluster
    ad["ProcId"] = proc
    ad["Owner"] = owner
    ad["User"] = f"{owner}@{hostname}"
    ad["GlobalJobId"] = f"{hostname}#{cluster}.{proc}#{qdate}"
    ad["JobStatus"] = 1
    ad["QDate"] = qdate
    ad["EnteredCurrentStatus"] = qdate
    ad["Iwd"] = job_iwd
    ad["Cmd"] = exe if os.path.isabs(exe) else os.path.join(job_iwd, exe)
    ad["Arguments"] = canonical_arguments(split_arguments(get("arguments") or ""))
    ad["JobPrio"] = _int(get("priority"), "priority")
    ad["JobRunCount"] = 0
    ad["NumJobStarts"] = 0
    ad["In"] = "/dev/null"
    ad["Out"] = "/dev/null"
    ad["Err"] = "/dev/null"
    ad["JobUniverse"] = 5
    for key, attr in _STRING_KEYS.items():
        value = get(key)
        if value is not None:
            ad[attr] = value
    for attr in _PATH_ATTRS:
        value = str(ad.get(attr, ""))
        if value and not os.path.isabs(value):
            ad[attr] = os.path.join(job_iwd, value)
    ad["TransferExecutable"] = (get("transfer_executable") or "true").lower() not in ("false", "no")
    ad["GetEnv"] = (get("getenv") or "false").lower() in ("true", "yes")
    for k in keys:
        if k.startswith("MY.") or k.startswith("+"):
            name = k[3:] if k.startswith("MY.") else k[1:]
            ad[name] = submit_attr_expr(name, str(s.expand(k)))
    if owner_dn and "JobMonOwnerDN" not in ad:
        ad["JobMonOwnerDN"] = owner_dn
    return ad


def submit_attr_expr(name: str, text: str) -> classad2.ExprTree:
    """The expression of a submit file's ``+name = text`` line, read as condor_submit reads it.

    The submit language writes ``+Attr``/``MY.Attr`` values in the OLD ClassAd
    syntax, where a backslash is an ordinary character (only ``\\"`` escapes a
    quote): ``"Processed event (\\d+)"`` keeps its backslash, and so does a
    Windows-style path.  The new-syntax parser (``classad2.ExprTree(text)``)
    would treat ``\\d`` as an escape and drop the backslash.
    """
    if "\n" in text or "\r" in text:
        raise SubmitFileError(f"+{name} = {text!r}: not a ClassAd expression")
    try:
        parsed = classad2.parseOne(f"{name} = {text}", parser=classad2.ParserType.Old)
    except (classad2.ClassAdException, ValueError, SyntaxError) as exc:
        raise SubmitFileError(f"+{name} = {text}: not a ClassAd expression") from exc
    expr = parsed.lookup(name) if name in parsed else None
    if expr is None or len(parsed) != 1:
        raise SubmitFileError(f"+{name} = {text}: not a ClassAd expression")
    return expr


def _int(text: str | None, what: str) -> int:
    if text is None or text.strip() == "":
        return 0
    try:
        return int(text)
    except ValueError as exc:
        raise SubmitFileError(f"{what} must be an integer, not {text!r}") from exc


def output_paths(ad: Mapping[str, Any]) -> list[str]:
    value = str(ad.get("TransferOutput", "") or "")
    return [p.strip() for p in value.split(",") if p.strip()]


def input_paths(ad: Mapping[str, Any]) -> list[Path]:
    value = str(ad.get("TransferInput", "") or "")
    iwd = Path(str(ad["Iwd"]))
    return [iwd / p.strip() for p in value.split(",") if p.strip()]
