"""Progress from output lines and from a progress file: done, total, rate, ETA."""

from __future__ import annotations

from pathlib import Path

from jobmon_wrapper.progress import Progress, parse_progress_file


def test_unnamed_groups_give_done_and_total() -> None:
    p = Progress(r"Processed event (\d+) of (\d+)")
    assert p.feed_line(b"noise\n") is False
    assert p.feed_line(b"Processed event 12 of 50\n") is True
    snap = p.snapshot()
    assert snap["done"] == 12.0 and snap["total"] == 50.0
    assert snap["text"] == "Processed event 12 of 50"


def test_named_groups_and_thousands_separators() -> None:
    p = Progress(r"total=(?P<total>[\d,]+) done=(?P<done>[\d,]+)")
    p.feed_line(b"total=50,000 done=12,400")
    snap = p.snapshot()
    assert (snap["done"], snap["total"]) == (12400.0, 50000.0)


def test_rate_and_eta_from_samples() -> None:
    p = Progress(r"(\d+)/(\d+)")
    p.update({"done": 100.0, "total": 1100.0}, now=1000.0)
    p.update({"done": 300.0, "total": 1100.0}, now=1010.0)
    snap = p.snapshot()
    assert snap["rate"] == 20.0
    assert snap["eta"] == 40.0


def test_counter_restart_resets_rate() -> None:
    p = Progress(None)
    p.update({"done": 500.0}, now=1.0)
    p.update({"done": 10.0}, now=2.0)
    assert "rate" not in p.snapshot()


def test_progress_file_formats(tmp_path: Path) -> None:
    assert parse_progress_file("7 10\n") == {"done": 7.0, "total": 10.0}
    assert parse_progress_file("7\n") == {"done": 7.0}
    assert parse_progress_file("") == {}
    kv = parse_progress_file("done = 3\ntotal=9\nrate=1.5\neta=4\ntext=stage two\nother=1\n")
    assert kv == {"done": 3.0, "total": 9.0, "rate": 1.5, "eta": 4.0, "text": "stage two"}
    f = tmp_path / "progress"
    p = Progress(None, str(f))
    assert p.snapshot() == {}
    f.write_text("5 20\n")
    snap = p.snapshot()
    assert snap["done"] == 5.0 and snap["total"] == 20.0 and snap["text"] == "5 20"
