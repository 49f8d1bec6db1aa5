"""`jobmon submit` against a real relay: credential file, --pool condor path (pool stand-in)."""

from __future__ import annotations

import stat
from pathlib import Path

import htcondor2
import pytest
from jmtest.relay import start_relay

from jobmon.cli import main as cli
from jobmon.pools.base import SubmitResult
from jobmon.pools.local_jobs import expand_procs, split_v2


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory, pki):
    r = start_relay(tmp_path_factory.mktemp("relay"), pki)
    yield r
    r.cleanup()


class RecordingPool:
    """Stands in for CondorPool: keeps what it was asked to submit."""

    calls: list[tuple[str, str, str | None]] = []

    def submit(self, submit: htcondor2.Submit, *, iwd: str, owner_dn: str | None = None,
               count: int | None = None) -> SubmitResult:
        RecordingPool.calls.append((str(submit), iwd, owner_dn))
        return SubmitResult(4242, (0, 1, 2))


def test_submit_to_condor_pool_wraps_and_binds(relay, pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    import jobmon.pools.condor as condor

    monkeypatch.setattr(condor, "CondorPool", RecordingPool)
    monkeypatch.setenv("JOBMON_NO_CONDOR_CONFIG", "1")
    work = tmp_path / "w"
    work.mkdir()
    (work / "job.sub").write_text('executable = run.sh\narguments = "x $(Process)"\nqueue 3\n')
    state = tmp_path / "cli"
    rc = cli.main(["--state-dir", str(state), "--relay", relay.url, "--cert", str(pki.alice.cert_path),
                   "--key", str(pki.alice.key_path), "--ca-file", str(pki.ca_file),
                   "submit", "--pool", "condor", str(work / "job.sub")])
    assert rc == 0, capsys.readouterr().err
    assert capsys.readouterr().out.strip() == "3 job(s) submitted to cluster 4242."
    text, iwd, owner = RecordingPool.calls[-1]
    assert iwd == str(work) and owner == pki.alice.dn
    ads = expand_procs(htcondor2.Submit(text), cluster=4242, iwd=iwd)
    assert len(ads) == 3
    argv = split_v2(ads[2]["Arguments"])
    assert argv[:2] == ["--relay", relay.url] and argv[-3:] == ["./run.sh", "x", "2"]
    cred_id = ads[0]["JobMonCredentialId"]
    cred = state / "credentials" / cred_id / "jobmon.cred"
    assert str(cred) in ads[0]["TransferInput"]
    assert stat.S_IMODE(cred.stat().st_mode) == 0o600 and stat.S_IMODE(cred.parent.stat().st_mode) == 0o700
    assert cred.read_text().startswith("jm1.")
    assert cred.read_text().strip() not in text  # the secret travels as a file, never in the description
    assert ads[0]["JobMonOwnerDN"] == pki.alice.dn
