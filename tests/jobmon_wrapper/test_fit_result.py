"""Results are trimmed to fit the relay's 1 MiB body cap (base64 grows bytes by ~35 %)."""

from __future__ import annotations

import xmlrpc.client

from jobmon_wrapper.protocol import encoded_size, fit_result

MiB = 1 << 20


def test_small_results_are_untouched() -> None:
    r = {"exit_code": 0, "stdout": xmlrpc.client.Binary(b"hi"),
         "stderr": xmlrpc.client.Binary(b""), "truncated": False}
    assert fit_result(r) is r


def test_exec_output_is_cut_and_flagged() -> None:
    r = {"exit_code": 0, "stdout": xmlrpc.client.Binary(b"o" * MiB),
         "stderr": xmlrpc.client.Binary(b"e" * MiB), "truncated": False, "duration": 1.0}
    f = fit_result(r)
    assert encoded_size("s1", "r1", f) <= MiB
    assert f["truncated"] is True and f["exit_code"] == 0
    assert f["stdout"].data == b"o" * len(f["stdout"].data) and len(f["stdout"].data) > 300000
    assert f["stderr"].data == b"e" * len(f["stderr"].data) and len(f["stderr"].data) > 300000


def test_small_stderr_is_kept_whole() -> None:
    r = {"exit_code": 1, "stdout": xmlrpc.client.Binary(b"o" * 2 * MiB),
         "stderr": xmlrpc.client.Binary(b"the error\n"), "truncated": True}
    f = fit_result(r)
    assert f["stderr"].data == b"the error\n" and encoded_size(f) <= MiB


def test_read_returns_less_and_says_where_to_continue() -> None:
    r = {"data": xmlrpc.client.Binary(b"x" * MiB), "offset": 100.0,
         "next_offset": 100.0 + MiB, "size": 5.0 * MiB, "eof": False, "path": "big"}
    f = fit_result(r)
    n = len(f["data"].data)
    assert 0 < n < MiB and encoded_size(f) <= MiB
    assert f["next_offset"] == 100.0 + n and f["eof"] is False and f["offset"] == 100.0
