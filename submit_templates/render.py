"""Render the submit templates: fields, validation, Jinja2 with StrictUndefined.

``list_templates()`` names them, ``template_fields(name)`` describes every
field (the CLI's ``jobmon template render NAME --set K=V`` and the web submit
form are built from it), ``render(name, values)`` validates the values and
returns submit-language text. A missing or invalid value raises
``jobmon.errors.UsageError`` with one line naming the field.

Two kinds of value reach the file:

* *literal* values (arguments, environment, ClassAd strings such as the relay
  URL) are quoted with :mod:`submit_templates.quoting`, so ``$``, quotes,
  spaces and non-ASCII text arrive unchanged in the job;
* *submit-language* values (file names for ``output``/``error``/``log``,
  memory sizes) are written as given, so ``$(Cluster)`` and ``$(Process)``
  work there as in any hand-written submit file. They must be one line.
"""

from __future__ import annotations

import importlib
import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import jinja2

from jobmon.errors import UsageError
from submit_templates.quoting import (
    escape_macros,
    quote_arguments,
    quote_environment,
    split_environment,
)

TEMPLATE_DIR = Path(__file__).resolve().parent
SUFFIX = ".sub.j2"


@dataclass(frozen=True)
class TemplateField:
    """One input of a template, as the CLI and the web form show it."""

    name: str
    label: str
    type: str  # text, path, files, argv, env, int, bool, email, url, regex, size
    default: str = ""
    required: bool = False
    help: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _f(name: str, label: str, type: str, default: str = "", required: bool = False, help: str = "") -> TemplateField:
    return TemplateField(name, label, type, default, required, help)


_WRAPPER_FIELDS = [
    _f("relay_url", "Relay URL", "url", "", False,
       "https://host:8443/clarens; empty: the pool's JOBMON_RELAY_URL knob"),
    _f("wrapper", "Wrapper file", "path", "", False,
       "jobmon-wrapper.pyz; empty: the one built by `jobmon wrapper-path`"),
    _f("progress_regex", "Progress regex", "regex", "", False,
       "groups (?P<done>..) and (?P<total>..) over the job's output lines"),
    _f("credential_file", "Per-job credential file", "path", "", False,
       "a jobmon.cred file from `jobmon.issueCredential`; transferred with the job"),
    _f("credential_id", "Credential id", "text", "", False, "recorded as JobMonCredentialId (never the secret)"),
    _f("owner_dn", "Owner DN", "text", "", False, "the submitter's certificate subject, recorded as JobMonOwnerDN"),
    _f("ca_file", "Relay CA bundle", "path", "", False,
       "jobmon-ca.pem: the CA jobs need to verify the relay (`jobmon.jobTrust`); transferred with the job"),
]

_RESOURCE_FIELDS = [
    _f("request_cpus", "CPUs", "int", "1"),
    _f("request_memory", "Memory", "size", "1G", help="e.g. 512M, 2G"),
    _f("request_disk", "Disk", "size", "1G", help="e.g. 100M, 10G"),
]

_FIELDS: dict[str, list[TemplateField]] = {
    "wrapped": [
        _f("executable", "Program", "path", "", True, "the program to run (transferred unless transfer_executable=false)"),
        _f("arguments", "Arguments", "argv", "", False, "split like a shell command line: --label 'hello world'"),
        _f("environment", "Environment", "env", "", False, "NAME=value pairs: \"A=1 B='x y'\" or A=1;B=2"),
        _f("transfer_executable", "Transfer the program", "bool", "true"),
        _f("input_files", "Input files", "files", "", False, "comma-separated"),
        _f("output_files", "Output files", "files", "", False, "comma-separated; empty: every new file"),
        _f("output", "Stdout file", "path", "job.$(Cluster).$(Process).out"),
        _f("error", "Stderr file", "path", "job.$(Cluster).$(Process).err"),
        _f("log", "Event log", "path", "job.$(Cluster).log"),
        *_RESOURCE_FIELDS,
        _f("require_jobmon_node", "Only nodes with JobMon", "bool", "false",
           help="adds HasJobMon to the requirements (nodes running the jobmon startd cron)"),
        _f("count", "Number of jobs", "int", "1"),
        *_WRAPPER_FIELDS,
    ],
    "events": [
        _f("executable", "Event processor", "path", "", True, "called with --input --output --calibration --control --events"),
        _f("input_events", "Input event file", "path", "", True),
        _f("output_events", "Output event file", "path", "", True, "file name the processor writes; returned at the end"),
        _f("calibration_file", "Calibration file", "path", "", True),
        _f("control_file", "Control file", "path", "", True),
        _f("n_events", "Number of events", "int", "", True),
        _f("extra_arguments", "Extra arguments", "argv", ""),
        _f("priority", "Priority", "int", "0", help="job priority among your own jobs (higher first)"),
        _f("notify_user", "Mail to", "email", "", True, "mailed by HTCondor when the job completes"),
        _f("output", "Stdout file", "path", "events.$(Cluster).$(Process).out"),
        _f("error", "Stderr file", "path", "events.$(Cluster).$(Process).err"),
        _f("log", "Event log", "path", "events.$(Cluster).log"),
        _f("request_cpus", "CPUs", "int", "1"),
        _f("request_memory", "Memory", "size", "2G"),
        _f("request_disk", "Disk", "size", "4G"),
        *(
            f if f.name != "progress_regex"
            else _f("progress_regex", "Progress regex", "regex",
                    r"(?P<done>[\d,]+) of (?P<total>[\d,]+)", False, f.help)
            for f in _WRAPPER_FIELDS
        ),
    ],
    "include": [
        _f("relay_url", "Relay URL", "url", "", False, "empty: the pool's JOBMON_RELAY_URL knob"),
        _f("progress_regex", "Progress regex", "regex", ""),
        _f("credential_file", "Per-job credential file", "path", ""),
        _f("credential_id", "Credential id", "text", ""),
        _f("owner_dn", "Owner DN", "text", ""),
        _f("ca_file", "Relay CA bundle", "path", "", False, "jobmon-ca.pem, transferred with the job"),
        _f("require_jobmon_node", "Only nodes with JobMon", "bool", "true",
           help="needed: on JobMon nodes the USER_JOB_WRAPPER watches the job"),
    ],
}


def list_templates() -> list[str]:
    """Names of the templates, e.g. ``['events', 'include', 'wrapped']``."""
    names = sorted(p.name[: -len(SUFFIX)] for p in TEMPLATE_DIR.glob("*" + SUFFIX))
    return [n for n in names if n in _FIELDS]


def template_fields(name: str) -> list[TemplateField]:
    """The fields of template ``name`` in form order."""
    try:
        return list(_FIELDS[name])
    except KeyError:
        raise UsageError(
            f"no submit template named {name!r}", hint="templates: " + ", ".join(list_templates())
        ) from None


# ---------------------------------------------------------------- validation

_SIZE = re.compile(r"^\d+(\.\d+)?\s*([KMGT]i?B?)?$", re.IGNORECASE)
_EMAIL = re.compile(r"^[^@\s,;\"']+@[^@\s,;\"']+$")
_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def _one_line(name: str, value: str) -> str:
    if any(c in value for c in "\n\r\x00"):
        raise UsageError(f"{name}: the value must be one line")
    return value


def _as_int(name: str, value: str) -> int:
    try:
        n = int(value.strip())
    except ValueError:
        raise UsageError(f"{name}: {value!r} is not a whole number") from None
    if n < 0:
        raise UsageError(f"{name}: {value!r} must not be negative")
    return n


def _as_bool(name: str, value: str) -> bool:
    low = value.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise UsageError(f"{name}: {value!r} is not true or false")


def _as_files(name: str, value: str) -> list[str]:
    _one_line(name, value)
    return [p.strip() for p in value.split(",") if p.strip()]


def _as_argv(name: str, value: str) -> list[str]:
    try:
        return shlex.split(value)
    except ValueError as e:
        raise UsageError(f"{name}: cannot split {value!r}: {e}") from None


def _as_env(name: str, value: str) -> dict[str, str]:
    """``"A=1 B='x y'"`` (new syntax), ``A=1;B=2`` (old) or ``A=1 B='x y'`` (new, unquoted)."""
    text = value.strip()
    if not text:
        return {}
    if not text.startswith('"') and ";" not in text:
        text = '"' + text.replace('"', '""') + '"'
    try:
        return split_environment(text)
    except UsageError as e:
        raise UsageError(f"{name}: {e}") from None


def _as_regex(name: str, value: str) -> str:
    _one_line(name, value)
    try:
        re.compile(value)
    except re.error as e:
        raise UsageError(f"{name}: {value!r} is not a valid regular expression: {e}") from None
    return value


def _as_url(name: str, value: str) -> str:
    _one_line(name, value)
    if not re.match(r"^https?://[^\s/]+", value):
        raise UsageError(f"{name}: {value!r} is not an http(s) URL")
    return value


def _as_size(name: str, value: str) -> str:
    if not _SIZE.match(value.strip()):
        raise UsageError(f"{name}: {value!r} is not a size such as 512M or 2G")
    return value.strip()


def _as_email(name: str, value: str) -> str:
    if not _EMAIL.match(value.strip()):
        raise UsageError(f"{name}: {value!r} is not a mail address")
    return value.strip()


def _as_path(name: str, value: str) -> str:
    _one_line(name, value)
    return value.strip()


_CONVERT: dict[str, Callable[[str, str], Any]] = {
    "text": _one_line,
    "path": _as_path,
    "files": _as_files,
    "argv": _as_argv,
    "env": _as_env,
    "int": _as_int,
    "bool": _as_bool,
    "email": _as_email,
    "url": _as_url,
    "regex": _as_regex,
    "size": _as_size,
}


def _validate(name: str, values: Mapping[str, str]) -> dict[str, Any]:
    fields = {f.name: f for f in template_fields(name)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise UsageError(
            f"template {name} has no field {unknown[0]!r}", hint="fields: " + ", ".join(fields)
        )
    out: dict[str, Any] = {}
    for f in fields.values():
        raw = values.get(f.name)
        if raw is None or (isinstance(raw, str) and raw.strip() == "" and f.type not in ("argv", "env")):
            raw = f.default
        if not isinstance(raw, str):
            raise UsageError(f"{f.name}: expected text, got {type(raw).__name__}")
        if f.required and not raw.strip():
            raise UsageError(f"{f.name} is required ({f.label})", hint=f"--set {f.name}=...")
        if raw.strip() == "" and f.type not in ("argv", "env", "files", "bool", "int"):
            out[f.name] = ""
            continue
        out[f.name] = _CONVERT[f.type](f.name, raw)
    return out


# ---------------------------------------------------------------- defaults from the pool


def _default_relay_url() -> str:
    try:
        import htcondor2

        value = htcondor2.param.get("JOBMON_RELAY_URL")
    except ImportError:  # pragma: no cover - htcondor is a dependency
        value = None
    if not value:
        raise UsageError(
            "relay_url is required: the pool sets no JOBMON_RELAY_URL",
            hint="--set relay_url=https://relay.example.org:8443/clarens",
        )
    return _as_url("JOBMON_RELAY_URL", str(value))


def _default_wrapper() -> str:
    try:
        wrapperzip = importlib.import_module("jobmon.wrapperzip")
    except ImportError:
        raise UsageError("wrapper is required: jobmon.wrapperzip is not available",
                         hint="--set wrapper=/path/to/jobmon-wrapper.pyz") from None
    return str(wrapperzip.wrapper_path())


# ---------------------------------------------------------------- Jinja2


def classad_string(value: str) -> str:
    """A ClassAd string literal for a ``+Attr = ...`` line, safe from submit macros.

    Submit files write ``+Attr`` values in the old ClassAd syntax, where a
    backslash is literal and only ``\\"`` escapes a double quote.

    >>> print(classad_string('say "hi" $(X)'))
    "say \\"hi\\" $(DOLLAR)(X)"
    """
    _one_line("value", value)
    literal = '"' + value.replace('"', '\\"') + '"'
    import classad2

    try:
        back = classad2.parseOne("A = " + literal, parser=classad2.ParserType.Old).get("A")
    except (ValueError, SyntaxError):
        back = None
    if back != value:
        raise UsageError(f"{value!r} cannot be written as a ClassAd string (a backslash before a quote?)")
    return escape_macros(literal)


def _condor_list(items: list[str]) -> str:
    for item in items:
        if "," in item:
            raise UsageError(f"file name {item!r} contains a comma, which HTCondor's file lists cannot hold")
    return ", ".join(items)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["condor_args"] = quote_arguments
    env.filters["condor_env"] = quote_environment
    env.filters["classad_string"] = classad_string
    env.filters["condor_list"] = _condor_list
    env.filters["basename"] = lambda p: os.path.basename(str(p).rstrip("/"))
    return env


def _wrapper_context(v: dict[str, Any]) -> None:
    if "relay_url" in v and not v["relay_url"]:
        v["relay_url"] = _default_relay_url()
    if "wrapper" in v and not v["wrapper"]:
        v["wrapper"] = _default_wrapper()
    if v.get("credential_file"):
        v["credential_name"] = os.path.basename(v["credential_file"])
    else:
        v["credential_name"] = ""


def _wrapper_options(v: dict[str, Any]) -> list[str]:
    opts: list[str] = []
    if v.get("credential_name"):
        opts += ["--credential", v["credential_name"]]
    return opts


def _trust_files(v: dict[str, Any]) -> list[str]:
    """The per-job credential and the relay's CA bundle, when given: they travel with the job."""
    return [v[k] for k in ("credential_file", "ca_file") if v.get(k)]


def _context(name: str, v: dict[str, Any]) -> dict[str, Any]:
    _wrapper_context(v)
    if name == "include":
        v["transfer_inputs"] = _trust_files(v)
    elif name == "wrapped":
        exe = v["executable"]
        inputs = list(v["input_files"])
        if v["transfer_executable"]:
            payload = "./" + os.path.basename(exe)
            inputs.insert(0, exe)
        else:
            payload = exe
        inputs += _trust_files(v)
        v["wrapper_argv"] = [*_wrapper_options(v), "--", payload, *v["arguments"]]
        v["transfer_inputs"] = inputs
        if v["count"] < 1:
            raise UsageError("count: must be at least 1")
    elif name == "events":
        base = os.path.basename
        args = [
            "--input", base(v["input_events"]),
            "--output", base(v["output_events"]),
            "--calibration", base(v["calibration_file"]),
            "--control", base(v["control_file"]),
            "--events", str(v["n_events"]),
            *v["extra_arguments"],
        ]
        inputs = [v["executable"], v["input_events"], v["calibration_file"], v["control_file"]]
        inputs += _trust_files(v)
        v["wrapper_argv"] = [*_wrapper_options(v), "--", "./" + base(v["executable"]), *args]
        v["transfer_inputs"] = inputs
    return v


def render(name: str, values: Mapping[str, str]) -> str:
    """Submit-language text of template ``name`` filled with ``values`` (field name -> text)."""
    v = _context(name, _validate(name, values))
    try:
        return _environment().get_template(name + SUFFIX).render(**v)
    except jinja2.UndefinedError as e:  # a template bug or a field the template expects
        raise UsageError(f"template {name}: {e.message}") from None
