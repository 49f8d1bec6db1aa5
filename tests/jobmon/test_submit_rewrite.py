"""Submit rewriting of real submit files, checked by parsing the result with htcondor2."""

from __future__ import annotations

import textwrap
from pathlib import Path

import htcondor2
import pytest

from jobmon.errors import SubmitFileError
from jobmon.pools.local_jobs import expand_procs, split_v2
from jobmon.submit import WrapOptions, parse_submit_file, parse_submit_text, rewrite
from jobmon.submit.rewrite import description_text

OPTS = WrapOptions(wrapper="/opt/jobmon/jobmon-wrapper.pyz", relay_url="https://relay.example.org:8443/clarens",
                   owner_dn="/DC=org/DC=example/CN=Alice Smith", credential_file="/home/a/.jobmon/c/x/jobmon.cred",
                   credential_id="tid123")

FIXTURE_SUB = """\
universe                = vanilla
executable              = job.sh
arguments               = "--mode $(MODE:exit0) --runtime $(RUNTIME:20) --label 'hello world'"
transfer_input_files    = input.txt
should_transfer_files   = YES
when_to_transfer_output = ON_EXIT
transfer_output_files   = result.txt
output                  = $(TAG:sample).$(Cluster).$(Process).out
log                     = $(TAG:sample).log
+JobMonRelay            = "https://relay.example.org:8443/clarens"
queue $(COUNT:1)
"""


def wrapped_ads(text: str, opts: WrapOptions = OPTS, iwd: str = "/home/alice/analysis"):
    parsed = parse_submit_text(text, "job.sub")
    out = description_text(parsed, rewrite(parsed, opts))
    return out, expand_procs(htcondor2.Submit(out), cluster=77, iwd=iwd)


def test_recorded_sample_is_wrapped_and_keeps_everything_else() -> None:
    text, ads = wrapped_ads(FIXTURE_SUB)
    assert len(ads) == 1
    ad = ads[0]
    assert ad["Cmd"] == OPTS.wrapper
    argv = split_v2(ad["Arguments"])
    assert argv == ["--relay", OPTS.relay_url, "--job-id", "77.0", "--credential", "jobmon.cred", "--",
                    "./job.sh", "--mode", "exit0", "--runtime", "20", "--label", "hello world"]
    assert ad["TransferInput"] == "job.sh, input.txt, /home/a/.jobmon/c/x/jobmon.cred"
    assert ad["TransferOutput"] == "result.txt"
    assert ad["Out"] == "/home/alice/analysis/sample.77.0.out"
    assert ad["JobMonEnabled"] is True and ad["JobMonWrapped"] is True
    assert ad["JobMonRelay"] == OPTS.relay_url
    assert ad["JobMonOwnerDN"] == OPTS.owner_dn
    assert ad["JobMonCredentialId"] == "tid123"
    assert "should_transfer_files = YES" in text


def test_queue_n_and_process_macro() -> None:
    _, ads = wrapped_ads("executable = /bin/echo\ntransfer_executable = false\narguments = p$(Process)\nqueue 3\n")
    assert [ad["ProcId"] for ad in ads] == [0, 1, 2]
    assert [split_v2(ad["Arguments"])[-2:] for ad in ads] == [["/bin/echo", "p0"], ["/bin/echo", "p1"],
                                                             ["/bin/echo", "p2"]]
    assert "TransferInput" in ads[0] and "echo" not in ads[0]["TransferInput"]


def test_queue_from_inline_items_survive_the_rewrite() -> None:
    text, ads = wrapped_ads(textwrap.dedent("""\
        executable = run.sh
        arguments = "$(name) $(n)"
        queue name, n from (
          alpha, 1
          beta, 2
        )
        """))
    assert "alpha, 1" in text
    assert [split_v2(ad["Arguments"])[-2:] for ad in ads] == [["alpha", "1"], ["beta", "2"]]


def test_awkward_arguments_roundtrip() -> None:
    _, ads = wrapped_ads('executable = x\narguments = "say \'a ""quoted"" word\' \'it\'\'s\' $HOME $(DOLLAR)(X)"\nqueue\n')
    assert split_v2(ads[0]["Arguments"])[-4:] == ['a "quoted" word', "it's", "$HOME", "$(X)"]


def test_syntax_error_names_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.sub"
    f.write_text("executable = /bin/true\n# fine\nthis is not a submit line\nqueue\n")
    with pytest.raises(SubmitFileError) as err:
        parse_submit_file(f)
    msg = str(err.value)
    assert "line 3" in msg and "this is not a submit line" in msg and str(f) in msg


def test_bad_queue_statement_is_refused() -> None:
    with pytest.raises(SubmitFileError, match="line 2"):
        parse_submit_text("executable = a\nqueue x from (\n a\n", "q.sub")
    with pytest.raises(SubmitFileError):
        parse_submit_text("executable = a\nqueue abc\n", "q.sub")


def test_missing_executable_and_file() -> None:
    with pytest.raises(SubmitFileError, match="no executable"):
        parse_submit_text("arguments = x\nqueue\n")
    with pytest.raises(SubmitFileError, match="cannot read"):
        parse_submit_file("/nonexistent/job.sub")


def test_preparer_wraps_unwrapped_descriptions_once(tmp_path: Path) -> None:
    from jobmon.submit.preparer import make_submit_preparer

    issued = []

    def issue(dn: str) -> tuple[str, str]:
        issued.append(dn)
        return "jm1.secret.mac", "tid9"

    prep = make_submit_preparer("https://r:1/clarens", tmp_path, issue, wrapper="/w.pyz")
    s = htcondor2.Submit("executable = run.sh\narguments = $(x)\nqueue x in (a, b)\n")
    out = prep(s, "/CN=Web User", str(tmp_path))
    ads = expand_procs(out, cluster=5, iwd=str(tmp_path))
    assert [split_v2(a["Arguments"])[-1] for a in ads] == ["a", "b"]
    assert ads[0]["Cmd"] == "/w.pyz" and ads[0]["JobMonOwnerDN"] == "/CN=Web User"
    cred = tmp_path / "credentials" / "tid9" / "jobmon.cred"
    assert cred.read_text().strip() == "jm1.secret.mac"
    assert cred.stat().st_mode & 0o777 == 0o600 and cred.parent.stat().st_mode & 0o777 == 0o700
    assert str(cred) in ads[0]["TransferInput"]
    # already wrapped (by `jobmon submit`): unchanged, no second credential
    again = prep(out, "/CN=Web User", str(tmp_path))
    assert again["executable"] == "/w.pyz" and issued == ["/CN=Web User"]
