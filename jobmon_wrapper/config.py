"""The wrapper's options: command line > JOBMON_* environment > job ad file > defaults.

Under HTCondor the starter writes the job ad to ``$_CONDOR_JOB_AD`` in the old
ClassAd form (``Attr = value`` lines); ClusterId, ProcId, Owner, JobMonRelay
and JobMonProgressRegex are read from it.
"""

import os
from typing import Dict, List, Mapping, Optional, Tuple

USAGE = (
    "usage: jobmon-wrapper [-v] [--relay URL] [--job-id C.P] [--credential FILE]\n"
    "                      [--progress-regex RE] [--progress-file FILE] [--ca-file FILE]\n"
    "                      [--] EXECUTABLE [ARGS...]\n"
)

# option name -> (environment variable, job ad attribute)
_OPTIONS: Dict[str, Tuple[str, Optional[str]]] = {
    "relay": ("JOBMON_RELAY_URL", "JobMonRelay"),
    "job_id": ("JOBMON_JOB_ID", None),
    "credential": ("JOBMON_CREDENTIAL_FILE", None),
    "progress_regex": ("JOBMON_PROGRESS_REGEX", "JobMonProgressRegex"),
    "progress_file": ("JOBMON_PROGRESS_FILE", "JobMonProgressFile"),
    "ca_file": ("JOBMON_CA_FILE", None),
    "state_dir": ("JOBMON_STATE_DIR", None),
    "allow_shell": ("JOBMON_ALLOW_SHELL", None),
    "verbose": ("JOBMON_DEBUG", None),
    "log_file": ("JOBMON_LOG_FILE", None),
}

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


class UsageError(Exception):
    pass


class Config(object):
    """Everything the wrapper and its daemon need to know, already resolved."""

    def __init__(self) -> None:
        self.relay: Optional[str] = None
        self.job_id: Optional[str] = None
        self.credential: Optional[str] = None
        self.progress_regex: Optional[str] = None
        self.progress_file: Optional[str] = None
        self.ca_file: Optional[str] = None
        self.ca_dir: Optional[str] = None
        self.cert_file: Optional[str] = None
        self.key_file: Optional[str] = None
        self.state_dir: Optional[str] = None
        self.allow_shell = True
        self.verbose = False              # daemon diagnostics on stderr instead of the log
        self.log_file: Optional[str] = None
        self.sandbox = "."
        self.user: Optional[str] = None
        self.argv: List[str] = []
        self.chirp_interval = 60.0
        self.timeouts = {"connect": 10.0, "call": 30.0}


def parse_job_ad(text: str) -> Dict[str, object]:
    """Parse old-ClassAd ``Attr = value`` lines into Python values.

    Strings lose their quotes and escapes; integers, reals and booleans become
    Python values; anything else (expressions, ``undefined``) stays as text.

    >>> ad = parse_job_ad('ClusterId = 9\\nOwner = "alice"\\nX = true\\nY = 1.5\\n')
    >>> ad["clusterid"], ad["owner"], ad["x"], ad["y"]
    (9, 'alice', True, 1.5)
    """
    ad: Dict[str, object] = {}
    for line in text.splitlines():
        name, sep, raw = line.partition("=")
        if not sep:
            continue
        key = name.strip().lower()
        if not key or " " in key:
            continue
        ad[key] = _classad_value(raw.strip())
    return ad


def _classad_value(raw: str) -> object:
    if len(raw) >= 2 and raw[0] == '"' and raw[-1] == '"':
        out = []
        i = 1
        while i < len(raw) - 1:
            ch = raw[i]
            if ch == "\\" and i + 1 < len(raw) - 1:
                i += 1
                ch = {"n": "\n", "t": "\t"}.get(raw[i], raw[i])
            out.append(ch)
            i += 1
        return "".join(out)
    low = raw.lower()
    if low == "true":
        return True
    if low == "false":
        return False
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw)
    except ValueError:
        return raw


def read_job_ad(path: Optional[str]) -> Dict[str, object]:
    if not path:
        return {}
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            return parse_job_ad(f.read())
    except OSError:
        return {}


def split_argv(argv: List[str]) -> Tuple[Dict[str, str], List[str]]:
    """Split ``[options] [--] EXECUTABLE [ARGS...]`` into options and the payload argv."""
    opts: Dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return opts, argv[i + 1:]
        if arg in ("-v", "--verbose"):
            opts["verbose"] = "1"
            i += 1
            continue
        if not arg.startswith("--"):
            return opts, argv[i:]
        name, eq, value = arg[2:].partition("=")
        key = name.replace("-", "_")
        if key == "help":
            raise UsageError(USAGE)
        if key == "no_shell":
            opts["allow_shell"] = "0"
            i += 1
            continue
        if key not in _OPTIONS:
            raise UsageError("jobmon-wrapper: unknown option --%s\n%s" % (name, USAGE))
        if not eq:
            if i + 1 >= len(argv):
                raise UsageError("jobmon-wrapper: option --%s needs a value\n%s" % (name, USAGE))
            i += 1
            value = argv[i]
        opts[key] = value
        i += 1
    return opts, []


def _truthy(value: str) -> bool:
    return value.strip().lower() not in ("0", "false", "no", "off", "")


def load(argv: List[str], environ: Optional[Mapping[str, str]] = None,
         cwd: Optional[str] = None) -> Config:
    """Resolve the configuration from the command line, environment and job ad."""
    env = os.environ if environ is None else environ
    opts, payload = split_argv(argv)
    ad = read_job_ad(env.get("_CONDOR_JOB_AD"))
    cfg = Config()
    cfg.argv = payload
    cfg.sandbox = os.path.abspath(env.get("_CONDOR_SCRATCH_DIR") or cwd or os.getcwd())
    values: Dict[str, Optional[str]] = {}
    for key, (var, attr) in _OPTIONS.items():
        value = opts.get(key)
        if value is None:
            value = env.get(var) or None
        if value is None and attr is not None:
            adv = ad.get(attr.lower())
            if isinstance(adv, str) and adv:
                value = adv
        values[key] = value
    cfg.relay = values["relay"]
    cfg.job_id = values["job_id"]
    cluster, proc = ad.get("clusterid"), ad.get("procid", 0)
    if cfg.job_id is None and isinstance(cluster, int) and isinstance(proc, int):
        cfg.job_id = "%d.%d" % (cluster, proc)
    cfg.credential = values["credential"]
    if cfg.credential is None:
        shipped = os.path.join(cfg.sandbox, "jobmon.cred")
        if os.path.isfile(shipped):
            cfg.credential = shipped
    cfg.progress_regex = values["progress_regex"]
    cfg.progress_file = values["progress_file"]
    if cfg.progress_file and not os.path.isabs(cfg.progress_file):
        cfg.progress_file = os.path.join(cfg.sandbox, cfg.progress_file)
    cfg.ca_file = values["ca_file"]
    if cfg.ca_file is None:
        shipped = os.path.join(cfg.sandbox, "jobmon-ca.pem")
        if os.path.isfile(shipped):
            cfg.ca_file = shipped
    cfg.ca_dir = env.get("X509_CERT_DIR") or None
    proxy = env.get("X509_USER_PROXY") or None
    if proxy and os.path.isfile(proxy):
        cfg.cert_file = proxy
        cfg.key_file = proxy
    cfg.state_dir = values["state_dir"]
    if values["allow_shell"] is not None:
        cfg.allow_shell = _truthy(values["allow_shell"])
    if values["verbose"] is not None:
        cfg.verbose = _truthy(values["verbose"])
    cfg.log_file = values["log_file"]
    owner = ad.get("owner")
    cfg.user = owner if isinstance(owner, str) else None
    interval = env.get("JOBMON_CHIRP_INTERVAL")
    if interval:
        try:
            cfg.chirp_interval = max(1.0, float(interval))
        except ValueError:
            pass
    return cfg


def command_env(environ: Optional[Mapping[str, str]] = None,
                job_id: Optional[str] = None) -> Dict[str, str]:
    """The environment for commands the daemon runs: the job's, with a usable PATH and,
    when known, ``JOBMON_JOB_ID`` (the payload's own environment is never changed).

    >>> env = command_env({"A": "1"}, "12.3")
    >>> env["A"], env["PATH"], env["JOBMON_JOB_ID"]
    ('1', '/usr/local/bin:/usr/bin:/bin', '12.3')
    """
    env = dict(os.environ if environ is None else environ)
    if not env.get("PATH"):
        env["PATH"] = DEFAULT_PATH
    if job_id:
        env["JOBMON_JOB_ID"] = job_id
    return env
