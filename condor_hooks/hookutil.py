"""What every JobMon program run by HTCondor on an execute node shares.

Standard library and ``jobmon_wrapper`` only; Python >= 3.6 (EL8 nodes). The
programs are copied flat into ``/usr/libexec/jobmon/`` next to
``jobmon-wrapper.pyz``; ``jobmon_wrapper`` is imported from that zipapp when it
is not installed as a package.

Facts from the recordings (shared/condor-fixtures/hooks): job hooks get the
starter's job ad on stdin in the old ClassAd form (``Attr = value`` lines,
strings in double quotes with only ``\\"`` escaped), run as the job owner in
the job's scratch directory with the starter's environment plus
``_CONDOR_JOB_AD``, ``_CONDOR_SCRATCH_DIR`` ...
"""

import os
import re
import sys
from typing import Any, Dict, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_AD_BYTES = 8 * 1024 * 1024
DEFAULT_TIMEOUT = 5.0
CREDENTIAL_NAME = "jobmon.cred"
REPORT_METHOD = "jobmon.nodeReport"

_LINE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*?)\s*$")


class MalformedAd(Exception):
    """The job ad on stdin is not an old-form ClassAd of a job."""


def _value(raw: str) -> Any:
    if len(raw) >= 2 and raw[0] == '"' and raw[-1] == '"':
        return raw[1:-1].replace('\\"', '"')
    low = raw.lower()
    if low == "true":
        return True
    if low == "false":
        return False
    if low in ("undefined", "error"):
        return None
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw)
    except ValueError:
        return raw  # an expression, kept as text


def parse_old_ad(text: str) -> Dict[str, Any]:
    """Parse ``Attr = value`` lines; keys keep their case (look them up with :func:`get`).

    >>> ad = parse_old_ad('ClusterId = 26\\nProcId = 0\\nJobMonRelay = "https://r/x"\\nX = (A + 1)\\n')
    >>> ad["ClusterId"], ad["JobMonRelay"], ad["X"]
    (26, 'https://r/x', '(A + 1)')
    """
    ad = {}  # type: Dict[str, Any]
    bad = 0
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            bad += 1
            continue
        ad[m.group(1)] = _value(m.group(2))
    if not ad:
        raise MalformedAd("no 'Attr = value' lines on stdin (expected the job ad in the old ClassAd form)")
    if get(ad, "ClusterId") is None or get(ad, "ProcId") is None:
        raise MalformedAd("the ad on stdin has no ClusterId/ProcId: not a job ad (%d unreadable lines)" % bad)
    return ad


def get(ad: Dict[str, Any], name: str, default: Any = None) -> Any:
    """Case-insensitive attribute lookup, as ClassAds do."""
    if name in ad:
        return ad[name]
    low = name.lower()
    for key, value in ad.items():
        if key.lower() == low:
            return value
    return default


def job_id(ad: Dict[str, Any]) -> str:
    return "%s.%s" % (get(ad, "ClusterId"), get(ad, "ProcId"))


def enabled(ad: Dict[str, Any]) -> bool:
    return get(ad, "JobMonEnabled") is True


def read_stdin_ad() -> Dict[str, Any]:
    data = sys.stdin.buffer.read(MAX_AD_BYTES) if hasattr(sys.stdin, "buffer") else sys.stdin.read()
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return parse_old_ad(text)


def monitored_job_ad(prog: str) -> Optional[Dict[str, Any]]:
    """The job ad HTCondor wrote on stdin, or None when there is nothing for a hook to do:
    a malformed ad (one line on stderr; hooks never fail a job over it) or a job without JobMon."""
    try:
        ad = read_stdin_ad()
    except MalformedAd as e:
        note(prog, "ignoring malformed job ad: %s" % e)
        return None
    return ad if enabled(ad) else None


def note(prog: str, message: str) -> None:
    """One line on stderr (the starter logs hook stderr in StarterLog)."""
    try:
        sys.stderr.write("%s: %s\n" % (prog, message))
        sys.stderr.flush()
    except OSError:
        pass


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def resources(ad: Dict[str, Any]) -> Dict[str, Any]:
    """CPU, memory, pid counts the starter put in the ad (absent ones left out)."""
    out = {}  # type: Dict[str, Any]
    for key, attr in (("cpu_user", "RemoteUserCpu"), ("cpu_sys", "RemoteSysCpu"),
                      ("cpus_usage", "CpusUsage"), ("rss_kb", "ResidentSetSize"),
                      ("image_size_kb", "ImageSize"), ("disk_kb", "DiskUsage"),
                      ("nprocs", "NumPids"), ("pid", "JobPid")):
        v = _number(get(ad, attr))
        if v is not None:
            out[key] = int(v) if key in ("nprocs", "pid", "rss_kb", "image_size_kb", "disk_kb") else v
    return out


def import_wrapper() -> bool:
    """Make ``jobmon_wrapper`` importable (package, or the zipapp next to this file)."""
    try:
        import jobmon_wrapper  # noqa: F401

        return True
    except ImportError:
        pass
    for pyz in (os.environ.get("JOBMON_WRAPPER_PYZ"), os.path.join(HERE, "jobmon-wrapper.pyz")):
        if pyz and os.path.isfile(pyz):
            sys.path.insert(0, pyz)
            try:
                import jobmon_wrapper  # noqa: F401,F811

                return True
            except ImportError:
                sys.path.remove(pyz)
    return False


def wrapper_version() -> Optional[str]:
    if not import_wrapper():
        return None
    import jobmon_wrapper

    return str(getattr(jobmon_wrapper, "__version__", "unknown"))


def relay_url(ad: Optional[Dict[str, Any]] = None) -> Optional[str]:
    url = get(ad, "JobMonRelay") if ad else None
    if isinstance(url, str) and url:
        return url
    return os.environ.get("JOBMON_RELAY_URL") or None


def _sandbox_file(name: str) -> Optional[str]:
    for base in (os.environ.get("_CONDOR_SCRATCH_DIR"), os.getcwd()):
        if base:
            path = os.path.join(base, name)
            if os.path.isfile(path):
                return path
    return None


def send_report(prog: str, ad: Dict[str, Any], report: Dict[str, Any]) -> bool:
    """``jobmon.nodeReport(job, report)`` to the job's relay; never raises, never waits long."""
    url = relay_url(ad)
    if not url:
        note(prog, "job %s: no JobMonRelay in the ad and no JOBMON_RELAY_URL; nothing sent" % job_id(ad))
        return False
    if not import_wrapper():
        note(prog, "jobmon_wrapper not found (install jobmon-wrapper.pyz next to %s)" % HERE)
        return False
    import http.client
    import ssl
    import xmlrpc.client

    from jobmon_wrapper.transport import RelayClient, basic_auth, make_context, read_credential

    try:
        timeout = float(os.environ.get("JOBMON_HOOK_TIMEOUT") or DEFAULT_TIMEOUT)
    except ValueError:
        timeout = DEFAULT_TIMEOUT
    cred_path = os.environ.get("JOBMON_CREDENTIAL_FILE") or _sandbox_file(CREDENTIAL_NAME)
    proxy = os.environ.get("X509_USER_PROXY")
    if proxy and not os.path.isfile(proxy):
        proxy = None
    try:
        token = read_credential(cred_path) if cred_path else None
        if not token and not proxy:
            note(prog, "job %s: no per-job credential (%s) and no X509_USER_PROXY; nothing sent"
                 % (job_id(ad), CREDENTIAL_NAME))
            return False
        context = None
        if url.startswith("https:"):
            ca_file = os.environ.get("JOBMON_CA_FILE") or _sandbox_file("jobmon-ca.pem")
            ca_dir = os.environ.get("X509_CERT_DIR")
            if ca_dir and not os.path.isdir(ca_dir):
                ca_dir = None
            context = make_context(ca_file, ca_dir, proxy, proxy)
        client = RelayClient(url, context, basic_auth(token) if token else None, timeout)
        try:
            client.call(REPORT_METHOD, job_id(ad), report)
        finally:
            client.close()
        return True
    except xmlrpc.client.Fault as e:
        note(prog, "job %s: relay %s refused the report: fault %s %s" % (job_id(ad), url, e.faultCode, e.faultString))
    except (OSError, ssl.SSLError, xmlrpc.client.ProtocolError, http.client.HTTPException, ValueError) as e:
        note(prog, "job %s: relay %s not reached: %s" % (job_id(ad), url, e))
    return False
