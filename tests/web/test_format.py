"""How numbers, sizes, durations, times and states are written on the pages."""

from __future__ import annotations

import doctest

import relay.mail
import relay.web.format as fmt


def test_doctests() -> None:
    for mod in (fmt, relay.mail):
        result = doctest.testmod(mod)
        assert result.attempted > 0 and result.failed == 0, mod.__name__


def test_units() -> None:
    assert fmt.fmt_count(1234567.0, "ev") == "1,234,567 ev"
    assert fmt.fmt_bytes(3 * 1024 * 1024) == "3.0 MiB"
    assert fmt.fmt_kib(13904) == "13.6 MiB"
    assert fmt.fmt_duration(59.6) == "1 min"
    assert fmt.fmt_duration(61) == "1 min 1 s"
    assert fmt.fmt_duration(None) == "–"
    assert fmt.fmt_rate(250) == "250 ev/s"


def test_times_are_utc_in_the_markup_for_the_script_to_localise() -> None:
    tag = str(fmt.time_tag(1_700_000_000))
    assert tag == '<time datetime="2023-11-14T22:13:20+00:00">2023-11-14 22:13:20 UTC</time>'
    assert str(fmt.time_tag(None)) == "–"


def test_states_have_one_css_class_everywhere_and_are_escaped() -> None:
    for state in fmt.STATES + fmt.NODE_STATES:
        assert f'class="state state-{state}"' in str(fmt.state_badge(state))
    odd = str(fmt.state_badge("<script>"))
    assert "state-unknown" in odd and "<script>" not in odd


def test_progress_percent() -> None:
    assert fmt.percent({"done": 3, "total": 4}) == 75.0
    assert fmt.percent({"done": 9, "total": 4}) == 100.0
    assert fmt.percent({"done": 1, "total": 0}) is None
    assert fmt.percent(None) is None
