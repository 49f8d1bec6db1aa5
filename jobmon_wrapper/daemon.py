"""The daemon beside the payload: register, long-poll, serve requests, heartbeat, finish.

All of it runs in daemon threads. Every exception is caught at the boundary of
its loop and reported once in the daemon log (log.py: ``.jobmon/daemon.log``,
never the payload's stderr); nothing here can stop or delay the payload, and
the wrapper never waits for it longer than ``wrapper.FINISH_WAIT`` after the
payload has ended.

Relay trouble: connection errors and fault 998 (the relay is shutting down)
are treated alike: retry after capped exponential backoff with jitter; fault
900 (session unknown: the relay restarted) means register again. A result
whose post fails on the kept-alive connection is retried once on a fresh one.

Results ride on the next ``jobmon.poll(session, max_wait, results)``
(docs/PROTOCOL.md) when they are ready before that poll starts: after handing
out a batch of requests the poll loop waits up to ``PIGGYBACK_WAIT`` for them
to finish. A result that completes while a poll is open is posted at once
with ``jobmon.result``. A relay that refuses the three-argument poll (any
fault but 900/998) makes the daemon fall back to ``jobmon.result`` for good.
"""

import os
import threading
import time
import xmlrpc.client
from http import client as http_client
from typing import Any, Dict, List, Optional

from jobmon_wrapper import log, protocol
from jobmon_wrapper.backoff import Backoff
from jobmon_wrapper.config import Config
from jobmon_wrapper.faults import NOT_REGISTERED, SHUTTING_DOWN
from jobmon_wrapper.progress import Progress
from jobmon_wrapper.transport import (
    ContextSource,
    RelayClient,
    basic_auth,
    read_credential,
    tls_failure,
)
from jobmon_wrapper.watch import BEAT, PUSH, ProgressPush

DEFAULT_POLL_WAIT = 30.0
DEFAULT_HEARTBEAT = 60.0
CALL_TIMEOUT = 30.0
MIN_EMPTY_POLL = 0.5
PIGGYBACK_WAIT = 0.25
RETRYABLE_FAULTS = (SHUTTING_DOWN,)


def _number(value: Any, default: float, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return min(high, max(low, float(value)))


def _guard(name: str, target: Any) -> None:
    """Run a daemon thread's body; if it ever dies, say so once and end quietly."""
    try:
        if os.environ.get("JOBMON_TEST_CRASH") == name:
            raise RuntimeError("crash injected by JOBMON_TEST_CRASH")
        target()
    except BaseException as exc:  # noqa: BLE001 - the payload must never notice
        log.say("daemon thread %s stopped (%s: %s)" % (name, type(exc).__name__, exc),
                key="crash-" + name)


class Daemon(object):
    def __init__(self, cfg: Config, payload_pid: int, start_time: float,
                 progress: Optional[Progress] = None, job: Optional[str] = None) -> None:
        if not cfg.relay:
            raise ValueError("no relay URL")
        self.cfg = cfg
        self.job = job or cfg.job_id or "%s:%d" % (os.uname()[1], os.getpid())
        self.progress = progress
        self.ctx = protocol.Context(cfg.sandbox, os.getpid(), payload_pid, cfg.allow_shell, self.job)
        self.info = protocol.register_info(self.job, cfg.sandbox, payload_pid, start_time,
                                           cfg.argv, cfg.user)
        context = None
        if cfg.relay.startswith("https:"):
            context = ContextSource(cfg.ca_file, cfg.ca_dir, cfg.cert_file, cfg.key_file)
            context.get()  # fail now, once, if the CA or proxy cannot be loaded
        token = read_credential(cfg.credential)
        auth = basic_auth(token) if token else None
        self.poll_wait = DEFAULT_POLL_WAIT
        self.heartbeat = DEFAULT_HEARTBEAT
        self.max_body = protocol.DEFAULT_MAX_BODY
        self._base = RelayClient(cfg.relay, context, auth, CALL_TIMEOUT)
        self._poller = self._base.clone()
        self._poster = self._base.clone()
        self._post_lock = threading.Lock()
        self._session_lock = threading.Lock()
        self.session: Optional[str] = None
        self.registered = threading.Event()
        self.stopping = threading.Event()
        self.requests_served = 0
        self.piggyback = True             # results ride on the next poll
        self.results_piggybacked = 0
        self.results_posted = 0
        self._results_lock = threading.Condition()
        self._pending: List[Dict[str, Any]] = []   # {id, result} for the next poll
        self._pending_session: Optional[str] = None
        self._poll_open = False
        self._inflight = 0
        self._registering = False
        self._tried = False
        self._attempt_done = threading.Event()   # set when a register attempt has ended
        self.push = ProgressPush(progress)       # live progress while watched (watch.py)

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> None:
        for name, target in (("jobmon-poll", self._poll_loop),
                             ("jobmon-heartbeat", self._heartbeat_loop)):
            t = threading.Thread(target=_guard, args=(name, target), name=name)
            t.daemon = True
            t.start()

    def stop(self) -> None:
        self.stopping.set()
        self.ctx.stop.set()
        self.push.wake()

    def finish(self, final: Dict[str, Any], deadline: float) -> bool:
        """Post the final status if a session exists and time allows."""
        self.stop()
        if self.session is None and (self._registering or not self._tried):
            # the payload ended before a register attempt answered: wait for that attempt
            # (not longer: an unreachable relay fails it at once), within the time left
            self._attempt_done.wait(max(0.0, deadline - time.time() - 0.2))
        session = self.session
        remaining = deadline - time.time()
        if session is None or remaining <= 0.05:
            return False
        self._flush_results(session, deadline)
        for attempt in (0, 1):
            client = self._base.clone(timeout=max(0.05, deadline - time.time()))
            try:
                client.call("jobmon.finish", session, final)
                return True
            except xmlrpc.client.Fault as fault:
                if fault.faultCode not in RETRYABLE_FAULTS or attempt:
                    raise
            except (OSError, xmlrpc.client.ProtocolError, http_client.HTTPException):
                if attempt:
                    raise
            finally:
                client.close()
            if deadline - time.time() <= 0.3:
                return False
            time.sleep(0.1)
        return False

    def _flush_results(self, session: str, deadline: float) -> None:
        """Results still waiting for the next poll go now: the payload's end must not lose them."""
        with self._results_lock:
            results = self._pending if self._pending_session == session else []
            self._pending = []
        for item in results:
            if deadline - time.time() <= 0.3:
                return
            try:
                self._post_result(session, item["id"], item["result"])
            except Exception as exc:  # noqa: BLE001 - the finish still goes out
                log.say("result lost at the end (%s: %s)" % (type(exc).__name__, exc), key="flush")
                return

    # -- loops -------------------------------------------------------------
    def _register(self) -> None:
        self._attempt_done.clear()
        self._registering = True
        try:
            reply = self._poller.call("jobmon.register", self.info)
            self._take_register_reply(reply)
        finally:
            self._registering = False
            self._tried = True
            self._attempt_done.set()

    def _take_register_reply(self, reply: Any) -> None:
        if not isinstance(reply, dict) or not isinstance(reply.get("session"), str):
            raise ValueError("relay sent a bad register reply")
        self.poll_wait = _number(reply.get("poll_wait"), DEFAULT_POLL_WAIT, 1.0, 300.0)
        self.heartbeat = _number(reply.get("heartbeat"), DEFAULT_HEARTBEAT, 1.0, 3600.0)
        self.max_body = int(_number(reply.get("max_body"), protocol.DEFAULT_MAX_BODY,
                                    65536.0, 1 << 30))
        self._poller.timeout = self.poll_wait + CALL_TIMEOUT
        self._poller.close()
        if "watched" in reply:
            self.push.set_watched(bool(reply.get("watched")), reply.get("watch_interval"))
        with self._session_lock:
            self.session = reply["session"]
        self.registered.set()

    def _forget(self, session: Optional[str]) -> None:
        with self._session_lock:
            if self.session == session:
                self.session = None
                self.registered.clear()
        with self._results_lock:
            if self._pending_session == session:
                self._pending = []  # the relay forgot those requests with the session

    def _poll_loop(self) -> None:
        backoff = Backoff()
        while not self.stopping.is_set():
            session = self.session
            try:
                if session is None:
                    self._register()
                    backoff.reset()
                    continue
                asked = time.monotonic()
                requests = self._poll(session)
                backoff.reset()
                if not isinstance(requests, list):
                    raise ValueError("relay sent a bad poll reply")
                batch = []
                for req in requests:
                    if isinstance(req, dict) and req.get("op") == "watch":
                        self._watch(req)  # a control request: no thread, no result
                    elif isinstance(req, dict):
                        batch.append(req)
                for req in batch:
                    self._dispatch(req)
                if batch:
                    self._await_results(time.monotonic() + PIGGYBACK_WAIT)
                elif time.monotonic() - asked < MIN_EMPTY_POLL:
                    self.stopping.wait(MIN_EMPTY_POLL)  # a relay that does not hold the poll
                continue
            except xmlrpc.client.Fault as fault:
                if fault.faultCode == NOT_REGISTERED:
                    self._forget(session)
                    delay = 0.0 if backoff.failures == 0 else backoff.next()
                    backoff.failures += 1
                    self.stopping.wait(delay)
                    continue
                if fault.faultCode in RETRYABLE_FAULTS:
                    log.say("relay %s is shutting down (fault %s); retrying with backoff"
                            % (self.cfg.relay, fault.faultCode), key="poll-shutdown")
                else:
                    log.say("relay refused %s: fault %s %s"
                            % ("register" if session is None else "poll", fault.faultCode,
                               fault.faultString), key="poll-fault-%s" % fault.faultCode)
            except Exception as exc:  # noqa: BLE001 - loop boundary: never reach the payload
                tls = tls_failure(exc, self.cfg.ca_file, self.cfg.ca_dir)
                if tls is not None:
                    log.say("relay %s: %s; retrying with backoff" % (self.cfg.relay, tls),
                            key="poll-tls-%s" % getattr(exc, "verify_code", ""))
                else:
                    log.say("relay %s not reachable (%s: %s); retrying with backoff"
                            % (self.cfg.relay, type(exc).__name__, exc),
                            key="poll-%s" % type(exc).__name__)
            self.stopping.wait(backoff.next())

    def _poll(self, session: str) -> Any:
        """One long-poll, carrying the results that are ready (unless the relay refused that)."""
        with self._results_lock:
            results = self._pending if self._pending_session == session else []
            self._pending = []
            self._poll_open = True
        try:
            if not results:
                return self._poller.call("jobmon.poll", session, float(self.poll_wait))
            fit, rest = protocol.split_results(results, self.max_body)
            try:
                for item in rest:  # too big to ride along together: their own posts
                    self._post_result(session, item["id"], item["result"])
                reply = self._poller.call("jobmon.poll", session, float(self.poll_wait), fit)
                self.results_piggybacked += len(fit)
                return reply
            except xmlrpc.client.Fault as fault:
                if fault.faultCode in (NOT_REGISTERED,) + RETRYABLE_FAULTS:
                    raise
                # a relay without the results argument: post them and stop piggybacking
                self.piggyback = False
                log.say("relay refused results on jobmon.poll (fault %s); using jobmon.result"
                        % fault.faultCode, key="no-piggyback")
                for item in fit:
                    self._post_result(session, item["id"], item["result"])
                return self._poller.call("jobmon.poll", session, float(self.poll_wait))
            except Exception:
                with self._results_lock:  # resent next time; the relay ignores a duplicate
                    if self._pending_session == session:
                        self._pending = results + self._pending
                raise
        finally:
            with self._results_lock:
                self._poll_open = False

    def _await_results(self, until: float) -> None:
        """Give the requests just handed out a moment to finish, so results ride on the poll."""
        with self._results_lock:
            while self._inflight > 0 and not self.stopping.is_set():
                left = until - time.monotonic()
                if left <= 0:
                    return
                self._results_lock.wait(left)

    def _beat_at(self) -> float:
        return time.monotonic() + (self.heartbeat if self.registered.is_set() else 1.0)

    def _heartbeat_loop(self) -> None:
        """Heartbeats every ``heartbeat`` seconds; in between, live progress while watched (watch.py)."""
        beat_at = self._beat_at()
        while True:
            action = self.push.next_action(beat_at, self.stopping)
            if not action:
                return
            if action == BEAT:
                beat_at = self._beat_at()
            session = self.session
            if session is None:
                continue
            version = self.progress.version if self.progress is not None else 0
            try:
                snap = self.progress.snapshot() if self.progress is not None else None
                if action == BEAT:
                    status = protocol.heartbeat_status(self.ctx, snap)
                else:
                    status = protocol.progress_status(snap)
                self._post("jobmon.heartbeat", session, status)
            except xmlrpc.client.Fault as fault:
                if fault.faultCode == NOT_REGISTERED:
                    self._forget(session)
                elif fault.faultCode in RETRYABLE_FAULTS:
                    pass  # the relay is restarting; the poll loop re-registers
                else:
                    log.say("heartbeat refused: fault %s %s"
                            % (fault.faultCode, fault.faultString), key="heartbeat-fault")
            except Exception as exc:  # noqa: BLE001 - loop boundary
                log.say("heartbeat failed (%s: %s)" % (type(exc).__name__, exc),
                        key="heartbeat-%s" % type(exc).__name__)
            finally:
                self.push.sent(version, action == PUSH)

    def _watch(self, req: Dict[str, Any]) -> None:
        """The relay's ``watch`` control request: someone started or stopped watching the job."""
        args = req.get("args")
        if isinstance(args, dict):
            self.push.set_watched(bool(args.get("watched")), args.get("interval"))

    # -- requests ----------------------------------------------------------
    def _dispatch(self, req: Dict[str, Any]) -> None:
        with self._results_lock:
            self._inflight += 1
        t = threading.Thread(target=self._serve, args=(req,), name="jobmon-op")
        t.daemon = True
        try:
            t.start()
        except BaseException:
            self._done_one()
            raise

    def _done_one(self) -> None:
        with self._results_lock:
            self._inflight -= 1
            self._results_lock.notify_all()

    def _serve(self, req: Dict[str, Any]) -> None:
        try:
            self._serve_one(req)
        finally:
            self._done_one()

    def _serve_one(self, req: Dict[str, Any]) -> None:
        session = self.session
        try:
            result = protocol.handle(self.ctx, req)
            self.requests_served += 1
            if result is None or session is None:
                return
            result = protocol.fit_result(result, self.max_body)
            rid = str(req.get("id", ""))
            with self._results_lock:
                if self.piggyback and not self._poll_open and session == self.session:
                    if self._pending_session != session:
                        self._pending = []
                        self._pending_session = session
                    self._pending.append({"id": rid, "result": result})
                    return
            self._post_result(session, rid, result)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode == NOT_REGISTERED:
                self._forget(session)
            elif fault.faultCode not in RETRYABLE_FAULTS:
                log.say("result refused: fault %s %s" % (fault.faultCode, fault.faultString),
                        key="result-fault-%s" % fault.faultCode)
        except Exception as exc:  # noqa: BLE001 - loop boundary
            log.say("request %r failed (%s: %s)" % (req.get("op"), type(exc).__name__, exc),
                    key="serve-%s" % type(exc).__name__)

    def _post_result(self, session: str, rid: str, result: Dict[str, Any]) -> None:
        """``jobmon.result``; after an error on the kept-alive connection, once more on a fresh one."""
        for attempt in (0, 1):
            try:
                self._post("jobmon.result", session, rid, result)
                self.results_posted += 1
                return
            except xmlrpc.client.Fault:
                raise
            except Exception:  # noqa: BLE001 - RelayClient.call closed the connection
                if attempt:
                    raise

    def _post(self, method: str, *params: Any) -> Any:
        with self._post_lock:
            return self._poster.call(method, *params)
