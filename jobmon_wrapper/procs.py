"""The process tree below the wrapper, read from /proc (Linux).

%CPU is the lifetime average, as ``ps`` shows it: CPU seconds / elapsed
seconds * 100.
"""

import os
from typing import Any, Dict, List, Optional, Set

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE_KB = (os.sysconf("SC_PAGE_SIZE") // 1024) if hasattr(os, "sysconf") else 4


def _uptime() -> float:
    with open("/proc/uptime", "r") as f:
        return float(f.read().split()[0])


def read_proc(pid: int, uptime: Optional[float] = None) -> Optional[Dict[str, Any]]:
    """One process's entry, or None if it has gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            raw = f.read().decode("utf-8", "replace")
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmd = f.read()
    except OSError:
        return None
    lpar, rpar = raw.find("("), raw.rfind(")")
    comm = raw[lpar + 1:rpar]
    fields = raw[rpar + 2:].split()
    # fields[0] is field 3 (state) of proc(5)
    state = fields[0]
    ppid = int(fields[1])
    utime, stime = int(fields[11]), int(fields[12])
    starttime = int(fields[19])
    rss_pages = int(fields[21])
    up = _uptime() if uptime is None else uptime
    elapsed = max(0.0, up - starttime / float(_TICKS))
    cpu = (utime + stime) / float(_TICKS)
    args = [a.decode("utf-8", "replace") for a in cmd.split(b"\0") if a]
    return {
        "pid": pid,
        "ppid": ppid,
        "state": state,
        "cpu_percent": (100.0 * cpu / elapsed) if elapsed > 0 else 0.0,
        "cpu_seconds": cpu,
        "cpu_user": utime / float(_TICKS),
        "cpu_sys": stime / float(_TICKS),
        "rss_kb": rss_pages * _PAGE_KB,
        "elapsed": elapsed,
        "cmdline": " ".join(args) if args else "[%s]" % comm,
    }


def all_procs() -> List[Dict[str, Any]]:
    up = _uptime()
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            entry = read_proc(int(name), up)
            if entry is not None:
                out.append(entry)
    return out


def tree(root: int) -> List[Dict[str, Any]]:
    """``root`` and all its descendants, parents before children."""
    procs = all_procs()
    children: Dict[int, List[Dict[str, Any]]] = {}
    by_pid: Dict[int, Dict[str, Any]] = {}
    for p in procs:
        by_pid[p["pid"]] = p
        children.setdefault(p["ppid"], []).append(p)
    if root not in by_pid:
        return []
    out = []
    seen: Set[int] = set()
    stack = [by_pid[root]]
    while stack:
        p = stack.pop()
        if p["pid"] in seen:
            continue
        seen.add(p["pid"])
        out.append(p)
        stack.extend(sorted(children.get(p["pid"], []), key=lambda c: -c["pid"]))
    return out


def ps(root: int) -> Dict[str, Any]:
    keys = ("pid", "ppid", "state", "cpu_percent", "rss_kb", "elapsed", "cmdline")
    return {"processes": [{k: p[k] for k in keys} for p in tree(root)]}


def resources(root: int, exclude: Optional[int] = None) -> Dict[str, Any]:
    """Summed CPU and RSS of the tree under ``root`` (the payload's)."""
    total_user = total_sys = 0.0
    rss = n = 0
    for p in tree(root):
        if exclude is not None and p["pid"] == exclude:
            continue
        total_user += p["cpu_user"]
        total_sys += p["cpu_sys"]
        rss += p["rss_kb"]
        n += 1
    return {"cpu_user": total_user, "cpu_sys": total_sys, "rss_kb": rss, "nprocs": n}
