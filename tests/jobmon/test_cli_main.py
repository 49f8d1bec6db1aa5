"""The error boundary and the commands that need no relay (in process, real argv parsing)."""

from __future__ import annotations

import socket
from pathlib import Path

import htcondor2
import pytest

from jobmon.cli import main as cli
from jobmon.cli.cmd_admin import parse_since
from jobmon.cli.cmd_exec import remote_exit
from jobmon.cli.cmd_tail import last_lines


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("JOBMON_RELAY_URL", "JOBMON_STATE_DIR", "X509_USER_PROXY", "X509_CERT_DIR", "JOBMON_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("JOBMON_NO_CONDOR_CONFIG", "1")


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jobmon: "), err
    return lines[0]


def test_bad_job_id_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["status", "abc"]) == 2
    assert "not a job id" in one_line_error(capsys)


def test_unknown_option_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["q", "--bogus"]) == 2
    assert "--bogus" in one_line_error(capsys)


def test_no_relay_configured(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli.main(["--state-dir", str(tmp_path / "st"), "q"]) == 2
    assert "no relay configured" in one_line_error(capsys)


def test_unreachable_relay_exit_6_and_verbose_traceback(capsys: pytest.CaptureFixture[str], pki) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = ["--relay", f"https://127.0.0.1:{port}/clarens", "--cert", str(pki.alice.cert_path),
            "--key", str(pki.alice.key_path), "--ca-file", str(pki.ca_file), "whoami"]
    assert cli.main(args) == 6
    assert f"127.0.0.1:{port}" in one_line_error(capsys)
    assert cli.main(["-v", *args]) == 6
    assert "Traceback" in capsys.readouterr().err


def test_ctrl_c_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(argv: list[str]) -> int:
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "_dispatch", interrupted)
    assert cli.main(["q"]) == 130


def test_seed_form_is_detected(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--serverURL", "https://x:1/clarens", "--jobname", "j"]) == 2
    assert "--command" in one_line_error(capsys)


def test_exec_without_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--relay", "https://127.0.0.1:1/clarens", "exec", "1.0"]) == 2
    assert "no command" in one_line_error(capsys)


def test_submit_dry_run_prints_wrapped_description(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    sub = tmp_path / "job.sub"
    sub.write_text('executable = run.sh\narguments = "a $(Process)"\nqueue 2\n')
    assert cli.main(["--relay", "https://relay.example.org:8443/clarens", "submit", "--dry-run", str(sub)]) == 0
    out = capsys.readouterr().out
    parsed = htcondor2.Submit(out)
    assert parsed["executable"].endswith(".pyz")
    assert "./run.sh a $(Process)" in parsed["arguments"]
    assert parsed.getQArgs() == "2"
    assert "+JobMonRelay" in out and "relay.example.org" in out


def test_submit_syntax_error_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    sub = tmp_path / "bad.sub"
    sub.write_text("executable = run.sh\nnot valid\nqueue\n")
    assert cli.main(["--relay", "https://127.0.0.1:1/clarens", "submit", str(sub)]) == 2
    assert "line 2" in one_line_error(capsys)


def test_wrapper_path(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["wrapper-path"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.is_file() and path.suffix == ".pyz"


def test_helpers() -> None:
    assert remote_exit({"exit_code": 3}) == 3
    assert remote_exit({"signal": 9}) == 137
    assert last_lines(b"a\nb\nc\nd\n", 2, True) == b"c\nd\n"
    assert last_lines(b"artial\nb\nc\n", 5, False) == b"b\nc\n"
    assert parse_since("2h", now=10000.0) == 10000.0 - 7200
    assert parse_since("1700000000") == 1700000000.0


def test_job_table_and_status_lines_show_the_payload() -> None:
    import io

    from rich.console import Console

    from jobmon.cli.cmd_q import job_table, status_lines

    job = {"id": "7.0", "cluster": 7, "proc": 0, "owner": "alice", "state": "running", "connected": False,
           "cmd": "/c/jobmon-wrapper.pyz", "args": "--relay https://r/clarens --job-id 7.0 -- ./run.sh x",
           "progress": {"done": 5.0, "total": 20.0, "rate": 2.5, "eta": 6.0}}
    buf = io.StringIO()
    Console(file=buf, width=200).print(job_table([job]))
    text = buf.getvalue()
    assert "running*" in text and "5/20 (25%)" in text and "./run.sh x" in text and "--relay" not in text
    lines = status_lines({**job, "state": "finished", "exit_code": 0})
    assert any(line.startswith("exit:") and line.endswith("0") for line in lines)
    assert any("2.5/s" in line and "ETA 6s" in line for line in lines)
    assert lines[0] == "state:      finished"  # a finished job's monitor is gone, not "missing"
    assert status_lines(job)[0] == "state:      running (monitor not connected)"
    # an unknown submit time (a connected job answered by its monitor) is left out, not shown as "-"
    assert not any(line.startswith("submitted:") for line in lines)
    assert any(line.startswith("submitted:  ") and "-" not in line.split(":", 1)[1].strip()[:2]
               for line in status_lines({**job, "submitted": 1795303044.0}))


def test_template_list_and_render_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["template", "list"]) == 0
    assert "wrapped" in capsys.readouterr().out
    assert cli.main(["template", "render", "no-such-template"]) == 2
    assert "no-such-template" in one_line_error(capsys)
    assert cli.main(["template", "render", "wrapped", "--set", "novalue"]) == 2
    assert "KEY=VALUE" in one_line_error(capsys)


def test_template_render_parses_with_htcondor(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["template", "render", "wrapped", "--set", "executable=/bin/echo",
                     "--set", "relay_url=https://r.example.org:8443/clarens"]) == 0
    parsed = htcondor2.Submit(capsys.readouterr().out)
    assert parsed["executable"].endswith(".pyz") and parsed["MY.JobMonRelay"] == '"https://r.example.org:8443/clarens"'


def test_nodes_add_prints_join_steps_from_the_condor_config(capsys: pytest.CaptureFixture[str]) -> None:
    # no relay is configured: "add" is local and needs none
    saved = {k: htcondor2.param.get(k) for k in ("CONDOR_HOST", "TRUST_DOMAIN", "JOBMON_RELAY_URL")}
    htcondor2.param["CONDOR_HOST"] = "cm.example.org:9618"
    htcondor2.param["TRUST_DOMAIN"] = "example.org"
    htcondor2.param["JOBMON_RELAY_URL"] = "https://relay.example.org:8443/clarens"
    try:
        assert cli.main(["nodes", "add", "node07.example.org"]) == 0
    finally:
        for k, v in saved.items():
            htcondor2.param[k] = v if v is not None else ""
    out = capsys.readouterr().out
    assert "CONDOR_HOST = cm.example.org\n" in out
    assert "condor_token_create -identity condor@example.org" in out
    assert "/etc/condor/tokens.d/node07.example.org.token" in out
    assert "JOBMON_RELAY_URL = https://relay.example.org:8443/clarens" in out


def test_nodes_add_needs_a_host_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["nodes", "add"]) == 2
    assert "needs a NODE" in one_line_error(capsys)
    assert cli.main(["nodes", "add", "bad/name"]) == 2
    assert "not a host name" in one_line_error(capsys)


def test_job_table_keeps_ids_and_states_whole_at_the_narrowest_width() -> None:
    import io

    from rich.console import Console

    from jobmon.cli.cmd_q import MIN_TABLE_WIDTH, job_table, table_console

    jobs = [{"id": f"12345.{p}", "owner": "alice", "state": "finished", "host": "node01.example.org",
             "exit_code": 0, "cmd": "/bin/echo", "args": "a long list of arguments " * 3} for p in range(2)]
    buf = io.StringIO()
    Console(file=buf, width=MIN_TABLE_WIDTH).print(job_table(jobs))
    text = buf.getvalue()
    assert "12345.0" in text and "12345.1" in text and "finished" in text
    piped = io.StringIO()
    table_console(piped).print(job_table(jobs))
    assert "node01.example.org" in piped.getvalue()  # piped output is not cut to 80 columns


@pytest.mark.parametrize("name, why", [("missing.sub", "No such file"), (".", "Is a directory")])
def test_unreadable_submit_file_is_one_line_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                    name: str, why: str) -> None:
    path = tmp_path / name
    assert cli.main(["--relay", "https://127.0.0.1:1/clarens", "submit", str(path)]) == 2
    line = one_line_error(capsys)
    assert "cannot read submit file" in line and why in line


def test_bad_certificate_file_is_one_line_exit_3(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    junk = tmp_path / "cert.pem"
    junk.write_text("junk\n")
    assert cli.main(["--relay", "https://127.0.0.1:1/clarens", "--cert", str(junk), "--key", str(junk),
                     "whoami"]) == 3
    assert "cert.pem" in one_line_error(capsys)


def test_relay_submit_root_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from jobmon.cli.cmd_relay import relay_config
    from jobmon.cli.common import Context
    from jobmon.cli.main import build_parser
    from jobmon.settings import load_settings

    data, more = tmp_path / "data", tmp_path / "more"
    data.mkdir()
    more.mkdir()
    args = build_parser().parse_args(["relay", "--submit-root", str(data), "--submit-root", str(more)])
    config = relay_config(Context(load_settings({"state_dir": str(tmp_path / "state")}), args))
    assert config.submit_root_paths == (data.resolve(), more.resolve())
    # a directory that is not there: one line, exit 2, and no relay
    assert cli.main(["--state-dir", str(tmp_path / "state"), "relay", "--submit-root", str(tmp_path / "nope")]) == 2
    err = one_line_error(capsys)
    assert "--submit-root" in err and "no such directory" in err
