"""A fake htcondor2 layer (schedd, collector, startd, master) that replays the recordings.

It is handed to ``CondorPool(htcondor=fake)``. Everything that is not a daemon
(the enums, ``HTCondorException``, ``SubmitResult``, ``Submit``) is the real
htcondor2 object. The daemons behave as recorded in shared/condor-fixtures:
ads come from the ``.ad`` files, ``drainJobs`` returns the request id as a
``str`` and ``cancelDrainJobs`` returns ``None``, the slot ads change to the
recorded drain snapshots, and an unreachable daemon raises the exact
``HTCondorException`` text the real bindings give (measured against a closed
port).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import classad2
import htcondor2
import pytest

DAEMON_ON = 469
DAEMON_OFF_PEACEFUL = 483


def load_ads(path: Path) -> list[classad2.ClassAd]:
    return list(classad2.parseAds(path.read_text()))


def _matches(constraint: Any, ad: classad2.ClassAd) -> bool:
    text = str(constraint) if constraint is not None else "true"
    return classad2.ExprTree(text).eval(ad) is True


class FakeParam:
    def __init__(self, values: dict[str, Any]) -> None:
        self.values = dict(values)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def keys(self) -> list[str]:
        return list(self.values)

    def __contains__(self, key: object) -> bool:
        return key in self.values


class FakeCondor:
    """Stands in for the ``htcondor2`` module."""

    HTCondorException = htcondor2.HTCondorException
    DaemonType = htcondor2.DaemonType
    AdType = htcondor2.AdType
    JobAction = htcondor2.JobAction
    DrainType = htcondor2.DrainType
    DaemonCommand = htcondor2.DaemonCommand
    Submit = htcondor2.Submit

    def __init__(self, fixtures: Path) -> None:
        self.fixtures = fixtures
        self.param = FakeParam({
            "COLLECTOR_HOST": "127.0.0.1:9618",
            "CONDOR_HOST": "node01.example.org",
            "JOBMON_RELAY_URL": "https://relay.example.org:8443/clarens",
            "ENABLE_CHIRP_DELAYED": True,
            "NUM_CPUS": 4,
        })
        self.schedd_ad = load_ads(fixtures / "machines/schedd.ad")[0]
        self.master_ads = load_ads(fixtures / "machines/master.ad")
        self.startd_ads = load_ads(fixtures / "machines/startd_all_slots_one_busy.ad")
        self.queue: list[classad2.ClassAd] = []
        self.history_ads: list[classad2.ClassAd] = []
        self.collector_down = False
        self.schedd_down = False
        self.startd_down = False
        self.drain_variant = "default_retirement"
        self.calls: list[tuple[Any, ...]] = []
        self.submitted: list[tuple[htcondor2.Submit, int]] = []
        self.next_cluster = 100
        self._off_startds: dict[str, list[classad2.ClassAd]] = {}

    # --- scenario helpers
    def use_startds(self, relpath: str) -> None:
        self.startd_ads = load_ads(self.fixtures / relpath)

    def add_jobs(self, relpath: str) -> list[classad2.ClassAd]:
        ads = load_ads(self.fixtures / relpath)
        for ad in ads:
            (self.history_ads if ad.get("JobStatus") in (3, 4) else self.queue).append(ad)
        return ads

    # --- the module's callables
    def Collector(self, pool: Any = None) -> _Collector:  # noqa: N802 - mirrors htcondor2
        return _Collector(self, pool)

    def Schedd(self, location: classad2.ClassAd | None = None) -> _Schedd:  # noqa: N802
        assert location is not None and "MyAddress" in location
        return _Schedd(self, location)

    def Startd(self, location: classad2.ClassAd | None = None) -> _Startd:  # noqa: N802
        assert location is not None and "MyAddress" in location
        return _Startd(self, location)

    def send_command(self, ad: classad2.ClassAd, dc: htcondor2.DaemonCommand, target: str | None = None) -> None:
        if ad.get("MyAddress") is None:
            raise ValueError("Address not available in location ClassAd.")
        if ad.get("MyType") is None:
            raise ValueError("Daemon type not available in location ClassAd.")
        machine = str(ad.get("Machine"))
        self.calls.append(("send_command", ad.get("MyType"), machine, int(dc), target))
        if target == "STARTD" and int(dc) == DAEMON_OFF_PEACEFUL:
            self._off_startds[machine] = [a for a in self.startd_ads if a.get("Machine") == machine]
            self.startd_ads = [a for a in self.startd_ads if a.get("Machine") != machine]
        elif target == "STARTD" and int(dc) == DAEMON_ON:
            self.startd_ads += self._off_startds.pop(machine, [])


class _Collector:
    def __init__(self, fake: FakeCondor, pool: Any) -> None:
        self.fake = fake
        self.pool = pool

    def _check(self) -> None:
        if self.fake.collector_down:
            raise htcondor2.HTCondorException("Failed communication with collector.")

    def query(self, ad_type: htcondor2.AdType = htcondor2.AdType.Any, constraint: Any = None,
              projection: list[str] | None = None, statistics: Any = None) -> list[classad2.ClassAd]:
        self._check()
        self.fake.calls.append(("collector.query", ad_type, str(constraint)))
        source = {
            htcondor2.AdType.Startd: self.fake.startd_ads,
            htcondor2.AdType.Master: self.fake.master_ads,
            htcondor2.AdType.Schedd: [self.fake.schedd_ad],
        }.get(ad_type, [])
        return [ad for ad in source if _matches(constraint, ad)]

    def locate(self, daemon_type: htcondor2.DaemonType, name: str | None = None) -> classad2.ClassAd:
        self._check()
        self.fake.calls.append(("collector.locate", daemon_type, name))
        if daemon_type == htcondor2.DaemonType.Schedd and name in (None, self.fake.schedd_ad.get("Name")):
            return self.fake.schedd_ad
        raise htcondor2.HTCondorException("Unable to find daemon.")


class _Schedd:
    def __init__(self, fake: FakeCondor, location: classad2.ClassAd) -> None:
        self.fake = fake
        self.addr = location["MyAddress"]

    def _check(self, what: str) -> None:
        if self.fake.schedd_down:
            if what == "query":
                raise htcondor2.HTCondorException(
                    f"Failed to fetch ads from schedd, errmsg=CEDAR:6001:Failed to connect to {self.addr}")
            raise htcondor2.HTCondorException(f"Failed to connect to {self.addr}")

    def query(self, constraint: Any = "True", projection: list[str] | None = None, callback: Any = None,
              limit: int = -1, opts: Any = None) -> list[classad2.ClassAd]:
        self._check("query")
        out = [ad for ad in self.fake.queue if _matches(constraint, ad)]
        return out if limit < 0 else out[:limit]

    def history(self, constraint: Any = None, projection: list[str] | None = None, match: int = -1,
                since: Any = None) -> list[classad2.ClassAd]:
        self._check("history")
        ads = [ad for ad in self.fake.history_ads if _matches(constraint, ad)]
        ads.sort(key=lambda a: (a.get("CompletionDate") or a.get("EnteredCurrentStatus") or 0), reverse=True)
        return ads if match < 0 else ads[:match]

    def act(self, action: htcondor2.JobAction, job_spec: Any, reason: str | None = None) -> classad2.ClassAd:
        self._check("act")
        self.fake.calls.append(("schedd.act", action, str(job_spec), reason))
        done = 0
        for ad in list(self.fake.queue):
            if not _matches(job_spec, ad):
                continue
            done += 1
            if action == htcondor2.JobAction.Remove:
                ad["JobStatus"] = 3
                ad["RemoveReason"] = f"{reason} (by user alice)"
                self.fake.queue.remove(ad)
                self.fake.history_ads.append(ad)
            elif action == htcondor2.JobAction.Hold:
                ad["JobStatus"] = 5
                ad["HoldReason"] = f"{reason} (by user alice)"
                ad["HoldReasonCode"] = 1
            elif action == htcondor2.JobAction.Release:
                ad["JobStatus"] = 1
                ad["ReleaseReason"] = f"{reason} (by user alice)"
        result = classad2.ClassAd()
        for key in ("TotalError", "TotalNotFound", "TotalBadStatus", "TotalAlreadyDone", "TotalPermissionDenied"):
            result[key] = 0
        result["TotalSuccess"] = done
        result["TotalJobAds"] = done
        result["TotalChangedAds"] = 1 if done else 0
        return result

    def submit(self, description: htcondor2.Submit, count: int = 0, spool: bool = False,
               itemdata: Any = None, queue: Any = None) -> htcondor2.SubmitResult:
        self._check("submit")
        n = count or int((description.getQArgs() or "1").split()[0] or 1)
        cluster = self.fake.next_cluster
        self.fake.next_cluster += 1
        self.fake.submitted.append((description, n))
        return htcondor2.SubmitResult(cluster, 0, n, classad2.ClassAd({"ClusterId": cluster}), None)


class _Startd:
    def __init__(self, fake: FakeCondor, location: classad2.ClassAd) -> None:
        self.fake = fake
        self.addr = location["MyAddress"]

    def drainJobs(self, drain_type: htcondor2.DrainType = htcondor2.DrainType.Graceful,  # noqa: N802
                  on_completion: Any = None, check_expr: str | None = None, start_expr: str | None = None,
                  reason: str | None = None) -> str:
        if self.fake.startd_down:
            raise htcondor2.HTCondorException("Startd failed to start draining jobs.")
        self.fake.calls.append(("startd.drainJobs", self.addr, drain_type, reason))
        # the snapshot taken while the drained node still had its job (5 s after the request)
        self.fake.use_startds(f"drain/{self.fake.drain_variant}/3_during_drain_5s.ad")
        return str(self.fake.startd_ads[0]["DrainingRequestId"])

    def cancelDrainJobs(self, request_id: str | None = None) -> None:  # noqa: N802
        if self.fake.startd_down:
            raise htcondor2.HTCondorException("Startd failed to cancel draining jobs.")
        self.fake.calls.append(("startd.cancelDrainJobs", self.addr, request_id))
        variant = self.fake.fixtures / "drain" / self.fake.drain_variant
        after = variant / "5_after_cancel.ad"
        if not after.exists():  # with_retirement_600s kept only snapshots 1 and 3
            after = variant / "1_before_drain_one_job_running.ad"
        self.fake.use_startds(str(after.relative_to(self.fake.fixtures)))
        return None


@pytest.fixture
def fake_condor(condor_fixtures: Path) -> FakeCondor:
    return FakeCondor(condor_fixtures)
