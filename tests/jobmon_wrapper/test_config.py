"""Options: command line > JOBMON_* environment > $_CONDOR_JOB_AD > defaults."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from jobmon_wrapper import config


@pytest.fixture
def job_ad(condor_fixtures: Path, tmp_path: Path) -> Path:
    dest = tmp_path / ".job.ad"
    shutil.copy(condor_fixtures / "sandbox" / "fast_intervals" / "report" / "job.ad", dest)
    return dest


def test_recorded_job_ad_is_read(job_ad: Path, tmp_path: Path) -> None:
    ad = config.read_job_ad(str(job_ad))
    assert ad["clusterid"] == 9 and ad["procid"] == 0 and ad["owner"] == "alice"
    assert ad["arguments"] == "--label hello' 'world"
    cfg = config.load(["--", "payload"], {"_CONDOR_JOB_AD": str(job_ad),
                                          "_CONDOR_SCRATCH_DIR": str(tmp_path)})
    assert cfg.job_id == "9.0"
    assert cfg.relay == "https://relay.example.org:8443/clarens"
    assert cfg.user == "alice"
    assert cfg.sandbox == str(tmp_path)
    assert cfg.argv == ["payload"]


def test_precedence(job_ad: Path, tmp_path: Path) -> None:
    env = {"_CONDOR_JOB_AD": str(job_ad), "JOBMON_RELAY_URL": "https://env:1/clarens",
           "JOBMON_JOB_ID": "5.1", "_CONDOR_SCRATCH_DIR": str(tmp_path)}
    cfg = config.load(["prog", "--relay", "x"], env)
    assert cfg.relay == "https://env:1/clarens" and cfg.job_id == "5.1"
    assert cfg.argv == ["prog", "--relay", "x"]   # options end at the executable
    cfg = config.load(["--relay=https://argv:2/clarens", "--job-id", "7.3", "--", "prog"], env)
    assert cfg.relay == "https://argv:2/clarens" and cfg.job_id == "7.3"


def test_credential_and_ca_found_in_sandbox(tmp_path: Path) -> None:
    (tmp_path / "jobmon.cred").write_text("tok")
    (tmp_path / "jobmon-ca.pem").write_text("pem")
    cfg = config.load(["p"], {"_CONDOR_SCRATCH_DIR": str(tmp_path)})
    assert cfg.credential == str(tmp_path / "jobmon.cred")
    assert cfg.ca_file == str(tmp_path / "jobmon-ca.pem")
    cfg = config.load(["--credential", "/x/c", "p"], {"_CONDOR_SCRATCH_DIR": str(tmp_path),
                                                        "JOBMON_CREDENTIAL_FILE": "/y"})
    assert cfg.credential == "/x/c"


def test_proxy_shell_policy_and_progress(tmp_path: Path) -> None:
    proxy = tmp_path / "x509up"
    proxy.write_text("pem")
    cfg = config.load(["--progress-file", "prog.txt", "--no-shell", "p"],
                      {"_CONDOR_SCRATCH_DIR": str(tmp_path), "X509_USER_PROXY": str(proxy),
                       "X509_CERT_DIR": "/etc/grid-security/certificates"})
    assert cfg.cert_file == cfg.key_file == str(proxy)
    assert cfg.ca_dir == "/etc/grid-security/certificates"
    assert cfg.progress_file == str(tmp_path / "prog.txt")
    assert cfg.allow_shell is False


def test_bad_options() -> None:
    with pytest.raises(config.UsageError):
        config.load(["--bogus", "p"], {})
    with pytest.raises(config.UsageError):
        config.load(["--relay"], {})


def test_command_env_gets_a_path_when_the_job_has_none() -> None:
    assert config.command_env({"HOME": "/h"})["PATH"] == "/usr/local/bin:/usr/bin:/bin"
    assert config.command_env({"PATH": "/opt/bin"})["PATH"] == "/opt/bin"


def test_verbose_and_log_file_options() -> None:
    assert config.load(["--", "x"], {}).verbose is False
    cfg = config.load(["-v", "--relay", "https://r", "--", "-v"], {})
    assert cfg.verbose is True and cfg.argv == ["-v"] and cfg.relay == "https://r"
    assert config.load(["--verbose", "x"], {}).verbose is True
    assert config.load(["x"], {"JOBMON_DEBUG": "1"}).verbose is True
    assert config.load(["x"], {"JOBMON_DEBUG": "0"}).verbose is False
    assert config.load(["x"], {"JOBMON_LOG_FILE": "/tmp/d.log"}).log_file == "/tmp/d.log"
