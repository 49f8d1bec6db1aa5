"""Rewrite a user's submit description so the JobMon wrapper runs the payload.

``executable`` becomes the wrapper; ``arguments`` become the wrapper's options,
``--``, the original executable and the original arguments (macros such as
``$(Process)`` keep working: they are expanded per proc by HTCondor);
``transfer_input_files`` gains the original executable (when it is transferred),
the per-job credential file and, when jobs need it, the relay's CA bundle
``jobmon-ca.pem``; ``+JobMonEnabled``, ``+JobMonWrapped``,
``+JobMonRelay``, ``+JobMonOwnerDN``, ``+JobMonCredentialId`` are added.
Everything else is kept as it was, including the queue statement.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import htcondor2

from jobmon.pools.local_jobs import split_arguments
from jobmon.submit.credentials import CREDENTIAL_NAME
from jobmon.submit.parse import ParsedSubmit
from submit_templates.quoting import escape_macros, quote_argument


@dataclass(frozen=True)
class WrapOptions:
    wrapper: str                      # path of jobmon-wrapper.pyz
    relay_url: str
    owner_dn: str | None = None
    credential_file: str | None = None  # absolute path of the 0600 file to transfer
    credential_id: str | None = None
    progress_regex: str | None = None
    ca_file: str | None = None          # absolute path of the relay's CA bundle (jobmon-ca.pem) to transfer


def _get(submit: htcondor2.Submit, key: str) -> tuple[str | None, str | None]:
    """(actual key spelling, raw value) of a case-insensitive submit key."""
    for k in submit.keys():
        if k.lower() == key:
            return k, submit.get(k)
    return None, None


def _set(submit: htcondor2.Submit, key: str, value: str) -> None:
    actual, _ = _get(submit, key)
    submit[actual or key] = value


def _classad_string(value: str) -> str:
    return escape_macros('"' + value.replace('"', '\\"') + '"')


def v2_arguments(words: list[str]) -> str:
    """New-syntax ``arguments`` value; words are kept raw so submit macros still expand."""
    return '"' + " ".join(quote_argument(w) for w in words).replace('"', '""') + '"'


def rewrite(parsed: ParsedSubmit, opts: WrapOptions) -> htcondor2.Submit:
    """A new Submit (the input is not changed) describing the wrapped jobs."""
    s = htcondor2.Submit(parsed.text)
    wrap_submit(s, opts)
    return s


def is_wrapped(submit: htcondor2.Submit) -> bool:
    """True when the description already runs the wrapper (``+JobMonWrapped = true``)."""
    _, value = _get(submit, "my.jobmonwrapped")
    return (value or "").strip().lower() == "true"


def wrap_submit(s: htcondor2.Submit, opts: WrapOptions) -> None:
    """Wrap ``s`` in place (its queue statement and item data are kept)."""
    _, exe = _get(s, "executable")
    if exe is None:
        from jobmon.errors import SubmitFileError

        raise SubmitFileError("no executable given", hint="add `executable = PROGRAM`")
    _, raw_args = _get(s, "arguments")
    args = split_arguments(raw_args) if raw_args else []
    _, xfer_exe = _get(s, "transfer_executable")
    transfer_exe = (xfer_exe or "true").strip().lower() not in ("false", "no", "0")
    _, inputs_raw = _get(s, "transfer_input_files")
    inputs = [p.strip() for p in (inputs_raw or "").split(",") if p.strip()]
    if transfer_exe:
        payload = "./" + os.path.basename(exe)
        inputs.insert(0, exe)
    else:
        payload = exe
    wrapper_opts = ["--relay", escape_macros(opts.relay_url), "--job-id", "$(Cluster).$(Process)"]
    if opts.credential_file:
        inputs.append(opts.credential_file)
        wrapper_opts += ["--credential", CREDENTIAL_NAME]
    if opts.ca_file:
        inputs.append(opts.ca_file)  # found by the wrapper as ./jobmon-ca.pem
    if opts.progress_regex:
        wrapper_opts += ["--progress-regex", escape_macros(opts.progress_regex)]
    _set(s, "executable", opts.wrapper)
    _set(s, "arguments", v2_arguments([*wrapper_opts, "--", payload, *args]))
    if inputs:
        _set(s, "transfer_input_files", ", ".join(inputs))
    if transfer_exe and xfer_exe is not None:
        _set(s, "transfer_executable", "true")
    s["MY.JobMonEnabled"] = "true"
    s["MY.JobMonWrapped"] = "true"
    s["MY.JobMonRelay"] = _classad_string(opts.relay_url)
    if opts.owner_dn:
        s["MY.JobMonOwnerDN"] = _classad_string(opts.owner_dn)
    if opts.credential_id:
        s["MY.JobMonCredentialId"] = _classad_string(opts.credential_id)
    if opts.progress_regex:
        s["MY.JobMonProgressRegex"] = _classad_string(opts.progress_regex)


def description_text(parsed: ParsedSubmit, wrapped: htcondor2.Submit) -> str:
    """Submit-language text of ``wrapped`` with the original queue statement (inline items kept)."""
    lines = str(wrapped).rstrip("\n").splitlines()
    while lines and lines[-1].strip().lower().startswith("queue"):
        lines.pop()
    lines = [("+" + line[3:]) if line.startswith("MY.") else line for line in lines]
    return "\n".join(lines) + "\n" + (parsed.queue_text or "queue") + "\n"
