"""HTCondor argument/environment quoting, checked against htcondor2.Submit and the recordings."""

from __future__ import annotations

import doctest
import json
import random
from pathlib import Path

import classad2
import htcondor2
import pytest

from jobmon.errors import UsageError
from submit_templates import quoting
from submit_templates.quoting import (
    escape_macros,
    quote_arguments,
    quote_environment,
    split_ad_arguments,
    split_arguments,
    split_environment,
)

AWKWARD = [
    [],
    ["plain"],
    ["--label", "hello world"],
    ["it's", "don't stop"],
    ['say "hi"', '""', "'"],
    ["", "  ", "\ttab"],
    ["$(Cluster)", "$HOME", "$ENV(HOME)", "$$(Name)", "$$$ENV(HOME)", "cost $5", "$RANDOM_CHOICE(a,b)"],
    ["naïve", "日本語 テキスト", "Ünïcödé's \"x\""],
    ["a=b", "--x=1;2", "back\\slash", "#hash", "semi;colon"],
]


def parsed_arguments(value: str) -> str:
    sub = htcondor2.Submit({"executable": "/bin/true", "arguments": value})
    return sub.expand("arguments")


def test_doctests() -> None:
    result = doctest.testmod(quoting)
    assert result.attempted > 10
    assert result.failed == 0


@pytest.mark.parametrize("argv", AWKWARD, ids=lambda a: repr(a)[:40])
def test_round_trip_through_submit_parser(argv: list[str]) -> None:
    value = quote_arguments(argv)
    assert value.startswith('"') and value.endswith('"')
    assert split_arguments(parsed_arguments(value)) == argv


def test_round_trip_random_strings() -> None:
    rng = random.Random(20261121)
    alphabet = "$$$()aEN_V:{}[] \"'\t;=é"
    for _ in range(1500):
        argv = [
            "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
            for _ in range(rng.randint(1, 3))
        ]
        assert split_arguments(parsed_arguments(quote_arguments(argv))) == argv, argv


def test_macros_are_not_expanded() -> None:
    expanded = parsed_arguments(quote_arguments(["$(Cluster)", "$ENV(HOME)"]))
    assert "$(Cluster)" in expanded and "$ENV(HOME)" in expanded
    # unescaped, the submit parser would have replaced them
    raw = htcondor2.Submit({"arguments": '"$(Cluster) $ENV(HOME)"', "executable": "/bin/true"})
    assert raw.expand("arguments") != '"$(Cluster) $ENV(HOME)"'


def test_escape_macros_random() -> None:
    rng = random.Random(7)
    alphabet = "$$$$()aEN_V:{}[] ENV"
    for _ in range(1500):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        sub = htcondor2.Submit({"foo": '"' + escape_macros(s) + '"'})
        assert sub.expand("foo") == '"' + s + '"', s


def test_canonical_v2_form_from_the_recordings(condor_fixtures: Path) -> None:
    # The schedd's ad stores canonical V2 raw; the job (USER_JOB_WRAPPER recorder) got these argv.
    rec = json.loads((condor_fixtures / "hooks/no_exit_hook/exit0/03_user_job_wrapper.json").read_text())
    ad = classad2.parseOne(rec["job_ad_file"])
    assert ad["Arguments"] == "--mode exit0 --runtime 20 --label hello' 'world"
    assert split_ad_arguments(ad["Arguments"]) == rec["argv"][2:]
    # the same string as a submit-file value (new syntax) gives the same argv
    assert split_arguments(parsed_arguments('"' + ad["Arguments"] + '"')) == rec["argv"][2:]
    # and our own quoting of that argv means the same thing to HTCondor
    ours = quote_arguments(rec["argv"][2:])
    assert split_ad_arguments(ours[1:-1]) == split_ad_arguments(ad["Arguments"])


def test_sample_submit_file_form() -> None:
    sub = htcondor2.Submit(
        'executable = job.sh\narguments = "--mode $(MODE:exit0) --runtime $(RUNTIME:20) --label \'hello world\'"\n'
    )
    assert split_arguments(sub.expand("arguments")) == [
        "--mode", "exit0", "--runtime", "20", "--label", "hello world"
    ]


def test_old_syntax() -> None:
    assert split_arguments('one two  three') == ["one", "two", "three"]
    assert split_arguments("x 'y'") == ["x", "'y'"]
    with pytest.raises(UsageError, match="double quote"):
        split_arguments('a"b c')


@pytest.mark.parametrize(
    "bad", ['"unterminated', "\"it's", '"a" b', '"a\nb"'],
)
def test_malformed_values_raise_usage_error(bad: str) -> None:
    with pytest.raises(UsageError):
        split_arguments(bad)


def test_newline_in_argument_refused() -> None:
    with pytest.raises(UsageError, match="line break"):
        quote_arguments(["a\nb"])


def test_string_instead_of_list_refused() -> None:
    with pytest.raises(TypeError):
        quote_arguments("a b")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"A": "1"},
        {"JOBMON_RELAY_URL": "https://relay.example.org:8443/clarens", "B": "x y"},
        {"Q": 'say "hi"', "S": "it's", "D": "$HOME $(Cluster)", "U": "naïve", "E": ""},
    ],
)
def test_environment_round_trip(env: dict[str, str]) -> None:
    sub = htcondor2.Submit({"executable": "/bin/true", "environment": quote_environment(env)})
    assert split_environment(sub.expand("environment")) == env


def test_environment_bad_name() -> None:
    with pytest.raises(UsageError, match="not a valid environment variable name"):
        quote_environment({"1A": "x"})
    with pytest.raises(UsageError, match="NAME=VALUE"):
        split_environment('"novalue"')
