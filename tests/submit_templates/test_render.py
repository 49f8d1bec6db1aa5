"""Every template rendered with typical and awkward values, parsed by htcondor2.Submit."""

from __future__ import annotations

from pathlib import Path

import classad2
import htcondor2
import pytest

from jobmon.errors import UsageError
from submit_templates import render as render_module
from submit_templates.quoting import split_arguments
from submit_templates.render import (
    classad_string,
    list_templates,
    render,
    template_fields,
)

RELAY = "https://relay.example.org:8443/clarens"
WRAPPER = "/opt/jobmon/jobmon-wrapper.pyz"


def parse(text: str) -> htcondor2.Submit:
    return htcondor2.Submit(text)


def attr(sub: htcondor2.Submit, name: str) -> object:
    """The value a +Attr line gives the job ad (old ClassAd syntax, as condor_submit reads it)."""
    expr = sub.expand("MY." + name)
    return classad2.parseOne(f"{name} = {expr}", parser=classad2.ParserType.Old).get(name)


def argv_of(sub: htcondor2.Submit) -> list[str]:
    return split_arguments(sub.expand("arguments"))


def test_doctests() -> None:
    import doctest

    result = doctest.testmod(render_module)
    assert result.attempted >= 1 and result.failed == 0


def test_list_and_fields() -> None:
    assert list_templates() == ["events", "include", "wrapped"]
    for name in list_templates():
        fields = template_fields(name)
        names = [f.name for f in fields]
        assert len(names) == len(set(names))
        for f in fields:
            d = f.as_dict()
            assert set(d) >= {"name", "label", "type", "default", "required"}
            assert f.label
    wrapped = {f.name: f for f in template_fields("wrapped")}
    assert wrapped["executable"].required and not wrapped["arguments"].required
    assert wrapped["count"].default == "1"
    events = {f.name: f for f in template_fields("events")}
    assert events["notify_user"].required and events["n_events"].type == "int"


TYPICAL = {
    "executable": "/home/alice/analysis/job.sh",
    "arguments": "--mode exit0 --runtime 25 --label 'hello world'",
    "relay_url": RELAY,
    "wrapper": WRAPPER,
}

AWKWARD_ARGS = [
    ("--label 'hello world'", ["--label", "hello world"]),
    ("\"it's\" 'say \"hi\"'", ["it's", 'say "hi"']),
    ("'$(Cluster)' '$ENV(HOME)' '$$(Name)' 'cost $5'", ["$(Cluster)", "$ENV(HOME)", "$$(Name)", "cost $5"]),
    ("naïve '日本語 テキスト'", ["naïve", "日本語 テキスト"]),
    ("'' x", ["", "x"]),
]


def test_wrapped_typical() -> None:
    sub = parse(render("wrapped", TYPICAL))
    assert sub["universe"] == "vanilla"
    assert sub["executable"] == WRAPPER
    assert argv_of(sub) == ["--", "./job.sh", "--mode", "exit0", "--runtime", "25", "--label", "hello world"]
    assert [p.strip() for p in sub["transfer_input_files"].split(",")] == ["/home/alice/analysis/job.sh"]
    assert sub.expand("output") == "job.1.0.out"  # $(Cluster)/$(Process) work in file names
    assert attr(sub, "JobMonEnabled") is True
    assert attr(sub, "JobMonWrapped") is True
    assert attr(sub, "JobMonRelay") == RELAY
    assert "MY.JobMonProgressRegex" not in sub
    assert "requirements" not in sub
    assert sub.getQArgs().strip() == "1"


@pytest.mark.parametrize("args,expected", AWKWARD_ARGS, ids=[a for a, _ in AWKWARD_ARGS])
def test_wrapped_awkward_arguments(args: str, expected: list[str]) -> None:
    sub = parse(render("wrapped", {**TYPICAL, "arguments": args}))
    assert argv_of(sub) == ["--", "./job.sh", *expected]


def test_wrapped_everything_set() -> None:
    regex = r'events processed: (?P<done>\d+) of (?P<total>\d+) "$(X)" C:\tmp'
    dn = "/DC=org/DC=example/O=Example/CN=Zoë O'Brien \"the\" $(admin)"
    sub = parse(render("wrapped", {
        **TYPICAL,
        "environment": "A=1 B='x y' C=$(Cluster) D='it''s'",
        "transfer_executable": "false",
        "input_files": "in put.txt, calib.db",
        "output_files": "result.txt",
        "request_cpus": "2",
        "request_memory": "512M",
        "request_disk": "2G",
        "require_jobmon_node": "yes",
        "count": "3",
        "progress_regex": regex,
        "credential_file": "/home/alice/.jobmon/jobmon.cred",
        "credential_id": "tid-1234",
        "owner_dn": dn,
        "ca_file": "/home/alice/.jobmon/jobmon-ca.pem",
    }))
    assert argv_of(sub) == ["--credential", "jobmon.cred", "--", "/home/alice/analysis/job.sh",
                            "--mode", "exit0", "--runtime", "25", "--label", "hello world"]
    from submit_templates.quoting import split_environment
    assert split_environment(sub.expand("environment")) == {"A": "1", "B": "x y", "C": "$(Cluster)", "D": "it's"}
    # the credential and the relay's CA travel with the job (the wrapper finds ./jobmon-ca.pem)
    assert [p.strip() for p in sub["transfer_input_files"].split(",")] == [
        "in put.txt", "calib.db", "/home/alice/.jobmon/jobmon.cred", "/home/alice/.jobmon/jobmon-ca.pem"]
    assert sub["transfer_output_files"] == "result.txt"
    assert sub["request_memory"] == "512M" and sub["request_cpus"] == "2"
    assert "HasJobMon" in sub["requirements"]
    assert attr(sub, "JobMonProgressRegex") == regex
    assert attr(sub, "JobMonOwnerDN") == dn
    assert attr(sub, "JobMonCredentialId") == "tid-1234"
    assert sub.getQArgs().strip() == "3"


EVENTS = {
    "executable": "process_events",
    "input_events": "/data/run 42/in.evt",
    "output_events": "out.evt",
    "calibration_file": "calib/2026.db",
    "control_file": "ctl.txt",
    "n_events": "50000",
    "notify_user": "alice@example.org",
    "relay_url": RELAY,
    "wrapper": WRAPPER,
}


def test_events_template() -> None:
    sub = parse(render("events", {**EVENTS, "priority": "5", "extra_arguments": "--tag 'Zürich $run'"}))
    assert argv_of(sub) == [
        "--", "./process_events", "--input", "in.evt", "--output", "out.evt", "--calibration", "2026.db",
        "--control", "ctl.txt", "--events", "50000", "--tag", "Zürich $run",
    ]
    assert sub["notification"] == "Complete"
    assert sub["notify_user"] == "alice@example.org"
    assert sub["priority"] == "5"
    assert [p.strip() for p in sub["transfer_input_files"].split(",")] == [
        "process_events", "/data/run 42/in.evt", "calib/2026.db", "ctl.txt"]
    assert sub["transfer_output_files"] == "out.evt"
    assert attr(sub, "JobMonEventsTotal") == 50000
    assert attr(sub, "JobMonProgressRegex") == r"(?P<done>[\d,]+) of (?P<total>[\d,]+)"
    assert attr(sub, "JobMonRelay") == RELAY
    shipped = parse(render("events", {**EVENTS, "credential_file": "jobmon.cred", "ca_file": "jobmon-ca.pem"}))
    assert [p.strip() for p in shipped["transfer_input_files"].split(",")][-2:] == ["jobmon.cred", "jobmon-ca.pem"]


def test_include_fragment_in_a_user_file(tmp_path: Path) -> None:
    inc = tmp_path / "jobmon.inc"
    inc.write_text(render("include", {"relay_url": RELAY, "credential_file": "jobmon.cred",
                                      "ca_file": "jobmon-ca.pem", "progress_regex": r"(\d+)/(\d+)"}),
                   encoding="utf-8")
    user = (
        "universe = vanilla\nexecutable = job.sh\narguments = \"--label 'hello world'\"\n"
        "transfer_input_files = input.txt\nrequirements = (TARGET.Memory > 100)\n"
        f"include : {inc}\nqueue 2\n"
    )
    sub = parse(user)
    # the user's own lines are untouched ...
    assert sub["executable"] == "job.sh"
    assert split_arguments(sub.expand("arguments")) == ["--label", "hello world"]
    # ... and JobMon's are merged in
    assert [p.strip() for p in sub.expand("transfer_input_files").split(",")] == [
        "input.txt", "jobmon.cred", "jobmon-ca.pem"]
    assert sub.expand("requirements") == "(TARGET.Memory > 100) && (TARGET.HasJobMon =?= true)"
    assert attr(sub, "JobMonEnabled") is True
    assert attr(sub, "JobMonWrapped") is False
    assert attr(sub, "JobMonRelay") == RELAY
    assert sub.getQArgs().strip() == "2"


def test_include_without_user_requirements(tmp_path: Path) -> None:
    inc = tmp_path / "jobmon.inc"
    inc.write_text(render("include", {"relay_url": RELAY}), encoding="utf-8")
    sub = parse(f"executable = job.sh\ninclude : {inc}\nqueue\n")
    assert sub.expand("requirements") == "True && (TARGET.HasJobMon =?= true)"
    assert "transfer_input_files" not in sub


@pytest.mark.parametrize(
    "name,values,message",
    [
        ("wrapped", {"relay_url": RELAY, "wrapper": WRAPPER}, "executable is required"),
        ("wrapped", {**TYPICAL, "count": "many"}, "count: 'many' is not a whole number"),
        ("wrapped", {**TYPICAL, "count": "0"}, "count: must be at least 1"),
        ("wrapped", {**TYPICAL, "request_memory": "lots"}, "request_memory"),
        ("wrapped", {**TYPICAL, "relay_url": "relay.example.org"}, "not an http(s) URL"),
        ("wrapped", {**TYPICAL, "progress_regex": "(unclosed"}, "not a valid regular expression"),
        ("wrapped", {**TYPICAL, "arguments": "'unclosed"}, "arguments: cannot split"),
        ("wrapped", {**TYPICAL, "input_files": "a,b\nc"}, "one line"),
        ("wrapped", {**TYPICAL, "require_jobmon_node": "maybe"}, "not true or false"),
        ("wrapped", {**TYPICAL, "colour": "red"}, "has no field 'colour'"),
        ("wrapped", {**TYPICAL, "environment": "1X=2"}, "not a valid environment variable name"),
        ("events", {**EVENTS, "notify_user": "alice"}, "not a mail address"),
        ("events", {k: v for k, v in EVENTS.items() if k != "n_events"}, "n_events is required"),
        ("nosuch", {}, "no submit template named 'nosuch'"),
    ],
)
def test_bad_values_give_one_line(name: str, values: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError) as info:
        render(name, values)
    text = str(info.value)
    assert message in text
    assert "\n" not in text


def test_relay_url_from_the_pool_knob(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(htcondor2.param, "get", lambda key, default=None: RELAY if key == "JOBMON_RELAY_URL" else default)
    sub = parse(render("wrapped", {k: v for k, v in TYPICAL.items() if k != "relay_url"}))
    assert attr(sub, "JobMonRelay") == RELAY


def test_missing_relay_url_without_knob(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(htcondor2.param, "get", lambda key, default=None: default)
    with pytest.raises(UsageError, match="relay_url is required"):
        render("wrapped", {k: v for k, v in TYPICAL.items() if k != "relay_url"})


def test_classad_string_round_trip_and_refusal() -> None:
    for value in ['plain', 'say "hi"', r"C:\dir\sub", "naïve ✓", "$(X) $$(Y)"]:
        expr = htcondor2.Submit({"MY.A": classad_string(value)}).expand("MY.A")
        assert classad2.parseOne(f"A = {expr}", parser=classad2.ParserType.Old)["A"] == value
    with pytest.raises(UsageError):
        classad_string("line\nbreak")
