# -*- coding: utf-8 -*-
"""A stand-in for the 2005 JobMon daemon, written from its wire facts (docs/PROTOCOL.md).

Runs under Python 2.7 and 3.x with the standard library only. It speaks to
the relay exactly as the 2005 daemon does:

* every exchange is a fresh HTTPS connection: ``system.auth2`` with Basic
  ``<sha1 hex>:BROWSER``, the call(s) with Basic ``<nonce>:<password>``, then
  ``system.logout``; requests are POSTed to ``/clarens/``;
* ``JobMon.registerJob(jobname, hostname, port, pid)``; the answer's text is
  split on single spaces and ``=`` for the JobMon_* settings;
* wake-up: ``TCPbroadcast`` connects to the TCP server and sends ``register``,
  ``UDPbroadcast`` binds a UDP socket to the registered port; a wake-up is
  ``jobname=<j> fifo_usercommand=<name>``, read 1024 bytes at a time;
* ``JobMon.getJobToDo(name)``; the line runs through ``/bin/sh -c`` after a
  check of its first word (ls cat tail head du ps), stdout, or ``Error:`` +
  stderr when stderr is not empty;
* ``JobMon.outputJobResult(name with .fo -> .fi, output)`` with the output's
  raw bytes in the XML string, as Python 2's xmlrpclib writes it;
* SIGTERM: ``JobMon.unregisterJob`` with the registration's four arguments.

It prints one line per event (REGISTERED, WOKEN, RAN, UNREGISTERED...) for
the tests. Unlike the 2005 daemon it stops instead of spinning when its
wake-up connection ends.
"""
from __future__ import print_function

import base64
import hashlib
import os
import random
import select
import signal
import socket
import ssl
import subprocess
import sys
import time

try:  # Python 2
    import httplib
    import xmlrpclib
except ImportError:  # Python 3
    import http.client as httplib
    import xmlrpc.client as xmlrpclib

COMMANDS = ("ls", "cat", "tail", "head", "du", "ps")


def say(*words):
    print(*words)
    sys.stdout.flush()


def as_bytes(text):
    if isinstance(text, bytes):
        return text
    return text.encode("utf-8")


def xml_value(value):
    """One param as Python 2's xmlrpclib writes it (strings copied as bytes, & < > escaped)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return b"<value><int>" + str(value).encode("ascii") + b"</int></value>\n"
    raw = as_bytes(value).replace(b"&", b"&amp;").replace(b"<", b"&lt;").replace(b">", b"&gt;")
    return b"<value><string>" + raw + b"</string></value>\n"


def dumps(method, params):
    body = b"<?xml version='1.0'?>\n<methodCall>\n<methodName>" + method.encode("ascii") + b"</methodName>\n"
    body += b"<params>\n"
    for p in params:
        body += b"<param>\n" + xml_value(p) + b"</param>\n"
    return body + b"</params>\n</methodCall>\n"


class Clarens(object):
    """One exchange with the relay: log in, calls, log out (a new TLS connection each time)."""

    def __init__(self, args):
        host_port = args.url.split("/")[2]
        self.host, _, port = host_port.partition(":")
        self.port = int(port or 443)
        ctx = ssl.create_default_context(cafile=args.cafile)
        ctx.load_cert_chain(args.certfile, args.keyfile)
        source = (args.source, 0) if args.source else None
        self.conn = httplib.HTTPSConnection(self.host, self.port, context=ctx, source_address=source)
        self.user = hashlib.sha1(("%s_%f_%f" % (os.getpid(), time.time(), random.random())).encode()).hexdigest()
        self.password = "BROWSER"
        self.password = self.call("system.auth2", [])[2]

    def call(self, method, params):
        auth = base64.b64encode(("%s:%s" % (self.user, self.password)).encode()).decode("ascii")
        headers = {"Content-Type": "text/xml", "User-Agent": "Clarens_curl_async.py version 1.4",
                   "AUTHORIZATION": "Basic " + auth}
        self.conn.request("POST", "/clarens/", dumps(method, params), headers)
        reply = self.conn.getresponse().read()
        return xmlrpclib.loads(reply)[0][0]

    def close(self):
        try:
            self.call("system.logout", [])
        finally:
            self.conn.close()


def exchange(args, method, params):
    c = Clarens(args)
    try:
        return c.call(method, params)
    finally:
        c.close()


def run_line(line):
    """What the daemon does with a line: first word checked, the line to /bin/sh."""
    if not line:
        return b""
    if line.split(" ")[0] not in COMMANDS:
        return as_bytes("\nUnrecognized command: %s \n" % line)
    proc = subprocess.Popen(line, shell=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdin.close()
    out = proc.stdout.read()
    err = proc.stderr.read()
    proc.wait()
    return b"Error:" + err if err else out


class Daemon(object):
    def __init__(self, args):
        self.args = args
        self.hostname = args.hostname or socket.gethostname()
        self.port = random.randint(706, 63500)
        self.settings = {}
        self.sock = None

    def register(self):
        status, text = exchange(self.args, "JobMon.registerJob",
                                [self.args.jobname, self.hostname, self.port, os.getpid()])
        if status != 0:
            say("REFUSED", status, text)
            return False
        for word in text.split(" "):
            key = word.split("=")
            if len(key) > 1 and key[0].startswith("JobMon_"):
                self.settings[key[0]] = key[1]
        say("REGISTERED", text)
        return True

    def prepare_wakeup(self):
        if self.sock is not None:
            self.sock.close()
        method = self.settings.get("JobMon_wakeup_method")
        if method == "TCPbroadcast":
            self.sock = socket.create_connection((self.settings["JobMon_tcpserver_hostname"],
                                                  int(self.settings["JobMon_tcpserver_port"])))
            self.sock.send(b"register")
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((self.args.source or self.hostname, self.port))
        say("LISTENING", method, self.port)

    def wait_for_call(self, timeout):
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            return None
        msg = self.sock.recv(1024)
        if not msg:
            say("WAKEUP-CLOSED")
            raise SystemExit(3)
        found = {}
        for word in msg.decode("ascii").split(" "):
            key = word.split("=")
            if len(key) > 1:
                found[key[0]] = key[1]
        if found.get("jobname") != self.args.jobname:
            say("NOT-MINE", msg.decode("ascii"))
            return None
        say("WOKEN", found.get("fifo_usercommand"))
        return found.get("fifo_usercommand")

    def serve_one(self, name):
        c = Clarens(self.args)
        try:
            status, line = c.call("JobMon.getJobToDo", [name])
            output = run_line(line) if status == 0 else b""
            say("RAN", repr(line))
            status, text = c.call("JobMon.outputJobResult", [name.replace(".fo", ".fi"), output])
            say("ANSWERED", status, text)
        finally:
            c.close()

    def unregister(self, *_):
        status, text = exchange(self.args, "JobMon.unregisterJob",
                                [self.args.jobname, self.hostname, self.port, os.getpid()])
        say("UNREGISTERED", status, text)
        sys.exit(0)

    def run(self):
        signal.signal(signal.SIGTERM, self.unregister)
        registered_at = 0.0
        while True:
            reconnect = float(self.settings.get("JobMon_reconnect_time", 300))
            if time.time() - registered_at > reconnect:
                registered_at = time.time()
                if not self.register():
                    time.sleep(reconnect)
                    continue
                self.prepare_wakeup()
                reconnect = float(self.settings.get("JobMon_reconnect_time", 300))
            name = self.wait_for_call(reconnect)  # SIGTERM: the handler unregisters and exits
            if name:
                self.serve_one(name)


class Args(object):
    def __init__(self, argv):
        self.jobname = self.url = self.certfile = self.keyfile = self.cafile = None
        self.hostname = self.source = None
        i = 0
        while i < len(argv):
            flag, value = argv[i], argv[i + 1]
            if flag == "--certkeyfile":
                self.certfile = self.keyfile = value
            else:
                setattr(self, {"--jobname": "jobname", "--serverURL": "url", "--certfile": "certfile",
                               "--keyfile": "keyfile", "--cafile": "cafile", "--hostname": "hostname",
                               "--source": "source"}[flag], value)
            i += 2


if __name__ == "__main__":
    Daemon(Args(sys.argv[1:])).run()
