"""Numbers, sizes, durations and times as the pages show them (Jinja2 filters).

Every figure carries its unit; times are written as ``<time datetime=...>``
in UTC so the page's script can turn them into the viewer's local time (and
the page still reads correctly without JavaScript).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from jinja2 import Undefined
from markupsafe import Markup, escape

#: the CSS class suffix and the label of every state, the same on every page
STATES = ("waiting", "running", "held", "finished", "removed")


def _num(value: Any) -> float | None:
    if isinstance(value, (bool, Undefined)) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def fmt_count(value: Any, unit: str = "") -> str:
    """A count with thousands separators and an optional unit.

    >>> fmt_count(12400, "ev")
    '12,400 ev'
    >>> fmt_count(None)
    '–'
    """
    n = _num(value)
    if n is None:
        return "–"
    text = f"{n:,.0f}" if abs(n - round(n)) < 1e-9 or abs(n) >= 100 else f"{n:,.1f}"
    return f"{text} {unit}".rstrip()


def fmt_bytes(value: Any) -> str:
    """Bytes in binary units.

    >>> fmt_bytes(1536)
    '1.5 KiB'
    >>> fmt_bytes(12)
    '12 B'
    """
    n = _num(value)
    if n is None:
        return "–"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return "–"  # pragma: no cover


def fmt_kib(value: Any) -> str:
    """A size given in KiB (``rss_kb``)."""
    n = _num(value)
    return "–" if n is None else fmt_bytes(n * 1024)


def fmt_duration(value: Any) -> str:
    """Seconds as a short human duration.

    >>> fmt_duration(42)
    '42 s'
    >>> fmt_duration(900)
    '15 min'
    >>> fmt_duration(3725)
    '1 h 2 min'
    >>> fmt_duration(200000)
    '2 d 7 h'
    """
    n = _num(value)
    if n is None or n < 0:
        return "–"
    s = int(round(n))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        m, sec = divmod(s, 60)
        return f"{m} min" if sec == 0 or m >= 10 else f"{m} min {sec} s"
    if s < 86400:
        h, rest = divmod(s, 3600)
        return f"{h} h {rest // 60} min"
    d, rest = divmod(s, 86400)
    return f"{d} d {rest // 3600} h"


def fmt_rate(value: Any, unit: str = "ev") -> str:
    """A rate per second.

    >>> fmt_rate(41.3)
    '41.3 ev/s'
    >>> fmt_rate(0.02)
    '1.2 ev/min'
    """
    n = _num(value)
    if n is None:
        return "–"
    if 0 < n < 0.1:
        return f"{n * 60:.1f} {unit}/min"
    return f"{n:,.1f} {unit}/s" if n < 100 else f"{n:,.0f} {unit}/s"


def iso_utc(value: Any) -> str:
    n = _num(value)
    if n is None:
        return ""
    return dt.datetime.fromtimestamp(n, dt.timezone.utc).isoformat(timespec="seconds")


def time_tag(value: Any) -> Markup:
    """``<time>`` in UTC; jobmon.js rewrites the text in the viewer's local time.

    >>> str(time_tag(0))
    '<time datetime="1970-01-01T00:00:00+00:00">1970-01-01 00:00:00 UTC</time>'
    """
    n = _num(value)
    if n is None:
        return Markup("–")
    when = dt.datetime.fromtimestamp(n, dt.timezone.utc)
    iso = when.isoformat(timespec="seconds")
    text = when.strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup('<time datetime="{}">{}</time>').format(iso, text)


def percent(progress: Any) -> float | None:
    """Done/total as 0..100, or None when unknown.

    >>> percent({"done": 25, "total": 100})
    25.0
    >>> percent({"done": 5}) is None
    True
    """
    if not isinstance(progress, dict):
        return None
    done, total = _num(progress.get("done")), _num(progress.get("total"))
    if done is None or total is None or total <= 0:
        return None
    return max(0.0, min(100.0, 100.0 * done / total))


def state_badge(state: Any) -> Markup:
    """The coloured pill used for a job or node state everywhere."""
    name = str(state or "unknown")
    css = name if name in STATES or name in NODE_STATES else "unknown"
    return Markup('<span class="state state-{}">{}</span>').format(css, escape(name))


NODE_STATES = ("up", "draining", "drained", "off")


def job_label(job: Any) -> str:
    """A job's name, else the program it runs (the payload behind the wrapper).

    >>> job_label({"name": "calib"})
    'calib'
    >>> job_label({"cmd": "/x/jobmon-wrapper.pyz", "args": "--credential c -- ./proc.py --events 5"})
    'proc.py'
    >>> job_label({"cmd": "/bin/sleep", "args": "60"})
    'sleep'
    """
    if not isinstance(job, dict):
        return ""
    if job.get("name"):
        return str(job["name"])
    words = str(job.get("args") or "").split()
    if "--" in words and words.index("--") + 1 < len(words):
        return words[words.index("--") + 1].rsplit("/", 1)[-1]
    cmd = str(job.get("cmd") or "")
    if cmd and "jobmon-wrapper" not in cmd:
        return cmd.rsplit("/", 1)[-1]
    return words[0].rsplit("/", 1)[-1] if words else ""

def common_name(dn: Any) -> str:
    """The last ``CN=`` of a DN, for short displays.

    >>> common_name("/DC=org/DC=example/O=Example/CN=Alice Smith")
    'Alice Smith'
    """
    text = str(dn or "")
    parts = [p[3:] for p in text.split("/") if p.startswith("CN=")]
    return parts[-1] if parts else text


FILTERS = {
    "count": fmt_count,
    "bytes": fmt_bytes,
    "kib": fmt_kib,
    "duration": fmt_duration,
    "rate": fmt_rate,
    "iso": iso_utc,
    "timetag": time_tag,
    "percent": percent,
    "state": state_badge,
    "label": job_label,
    "cn": common_name,
}
