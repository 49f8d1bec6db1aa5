"""The XML-RPC method table and the dispatcher (no HTTP here).

Each method has a handler, a signature (``[return type, arg types...]``;
trailing ``?`` marks optional arguments), a help text and an access class:

* ``public`` — no identity needed (introspection, echo);
* ``login`` — needs a TLS client certificate (``system.auth2``);
* ``auth`` — any identity;
* ``user`` — any identity except a per-job credential;
* ``daemon`` — job daemons (credential, proxy or certificate);
* ``admin`` — pool admins only (``admins`` in the config or the access file's
  ``admins`` group), never a per-job credential.

Then the access file (fault 400) and, for user methods, the caller's rate
limit (fault 701) apply before the handler runs.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from relay.faults import Fault, RelayFault
from relay.identity import Identity
from relay.xmlrpc import Call, plain

if TYPE_CHECKING:  # pragma: no cover
    from relay.core import RelayCore

Handler = Callable[..., Awaitable[Any]]

_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "double": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "struct": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "base64": lambda v: isinstance(v, (bytes, bytearray)),
    "any": lambda v: True,
}


@dataclass
class Ctx:
    core: RelayCore
    identity: Identity | None
    basic: tuple[str, str] | None = None
    method: str = ""
    peer: str | None = None        # the address the caller's connection came from

    @property
    def caller(self) -> Identity:
        assert self.identity is not None
        return self.identity


@dataclass(frozen=True)
class Method:
    name: str
    handler: Handler
    signature: tuple[str, ...]   # return type first; "type?" optional; "*" variadic
    help: str
    access: str

    def check(self, params: tuple[Any, ...]) -> None:
        args = self.signature[1:]
        if args and args[-1] == "*":
            return
        required = sum(1 for a in args if not a.endswith("?"))
        if not required <= len(params) <= len(args):
            want = f"{required}" if required == len(args) else f"{required} to {len(args)}"
            raise RelayFault(Fault.BAD_PARAMS, f"{self.name} takes {want} parameter(s), got {len(params)}: {self.usage}")
        for i, (value, typ) in enumerate(zip(params, args)):
            if not _TYPES[typ.rstrip("?")](value):
                raise RelayFault(
                    Fault.BAD_PARAMS,
                    f"{self.name}: parameter {i + 1} must be {typ.rstrip('?')}, got {type(value).__name__}: {self.usage}",
                )

    @property
    def usage(self) -> str:
        return f"{self.name}({', '.join(self.signature[1:])}) -> {self.signature[0]}"

    def wire_signature(self) -> list[list[str]]:
        args = [a for a in self.signature[1:] if a != "*"]
        full = [self.signature[0]] + [a.rstrip("?") for a in args]
        sigs = [full]
        required = sum(1 for a in args if not a.endswith("?"))
        for n in range(len(args) - 1, required - 1, -1):
            sigs.append(full[: n + 1])
        return sigs


TABLE: dict[str, Method] = {}
#: what is still answered while the relay stops: results of commands already handed out (also
#: riding on a poll) and the fan-out results their callers are collecting (relay/core.py, drain)
WHILE_STOPPING = frozenset(("jobmon.result", "jobmon.poll", "jobmon.batchResults"))


def method(name: str, signature: str, access: str, help: str) -> Callable[[Handler], Handler]:
    def deco(func: Handler) -> Handler:
        TABLE[name] = Method(name, func, tuple(signature.split()), help, access)
        return func
    return deco


# -- Clarens standard ---------------------------------------------------------
@method("system.auth2", "array", "login",
        "Log in (Clarens): call with Basic <sha1-hex nonce>:BROWSER and a client certificate; "
        "returns [dn, expiry, session_password]; later calls send Basic <nonce>:<session_password>.")
async def _auth2(ctx: Ctx) -> Any:
    if ctx.basic is None:
        raise RelayFault(Fault.BAD_PARAMS, "system.auth2 needs HTTP Basic <nonce>:BROWSER")
    sess = ctx.core.sessions.login(ctx.basic[0], ctx.caller.dn)
    ctx.core.audit(ctx.caller, "system.auth2")
    return [ctx.caller.dn, sess.expires, sess.password]


@method("system.logout", "boolean", "auth", "End the Clarens session named by this request's Basic credentials.")
async def _logout(ctx: Ctx) -> Any:
    if ctx.basic is not None and ctx.identity is not None and ctx.identity.kind == "session":
        ctx.core.sessions.logout(ctx.basic[0])
    return True


@method("system.listMethods", "array", "public", "The names of the methods you may call.")
async def _list(ctx: Ctx) -> Any:
    return sorted(n for n, m in TABLE.items() if may_call(ctx.core, ctx.identity, m))


@method("system.methodHelp", "string string", "public", "Help text of a method.")
async def _help(ctx: Ctx, name: str) -> Any:
    m = TABLE.get(name)
    if m is None:
        raise RelayFault(Fault.UNKNOWN_METHOD, f"no method {name!r}; see system.listMethods")
    return f"{m.usage}\n{m.help}"


@method("system.methodSignature", "array string", "public",
        "Signatures of a method: arrays of [return type, argument types...].")
async def _sig(ctx: Ctx, name: str) -> Any:
    m = TABLE.get(name)
    if m is None:
        raise RelayFault(Fault.UNKNOWN_METHOD, f"no method {name!r}; see system.listMethods")
    return m.wire_signature()


@method("echo.echo", "array *", "public", "Returns its arguments, as an array.")
async def _echo(ctx: Ctx, *args: Any) -> Any:
    return list(args)


@method("echo.hostname", "array", "public", "[host name, IP address] of the relay.")
async def _hostname(ctx: Ctx) -> Any:
    name = socket.getfqdn()
    try:
        ip = socket.gethostbyname(socket.gethostname())
    except OSError:
        ip = "127.0.0.1"
    return [name, ip]


def may_call(core: RelayCore, identity: Identity | None, m: Method) -> bool:
    if m.access == "public":
        return True
    if identity is None:
        return False
    if m.access == "login" and identity.kind not in ("certificate", "proxy"):
        return False
    if m.access in ("user", "admin") and identity.kind == "credential":
        return False
    if m.access == "admin" and not core.is_admin(identity):
        return False
    return core.access.allowed(identity.dn, m.name)


class Dispatcher:
    def __init__(self, core: RelayCore) -> None:
        self.core = core
        # import for their @method registrations
        from relay import legacy, methods_jobmon  # noqa: F401

    async def dispatch(
        self, call: Call, identity: Identity | None, identity_error: RelayFault | None = None,
        basic: tuple[str, str] | None = None, peer: str | None = None,
    ) -> Any:
        m, ctx, params = self.prepare(call, identity, identity_error, basic, peer)
        return await m.handler(ctx, *params)

    def prepare(
        self, call: Call, identity: Identity | None, identity_error: RelayFault | None = None,
        basic: tuple[str, str] | None = None, peer: str | None = None,
    ) -> tuple[Method, Ctx, tuple[Any, ...]]:
        """Every check before the handler runs (method, identity, access, rate, parameters)."""
        m = TABLE.get(call.method)
        if m is None:
            raise RelayFault(Fault.UNKNOWN_METHOD, f"no method {call.method!r}; see system.listMethods")
        if m.access != "public":
            if self.core.stopping and m.name not in WHILE_STOPPING:
                raise RelayFault(Fault.SHUTTING_DOWN, "the relay is stopping; retry shortly")
            if identity_error is not None:
                raise identity_error
            if identity is None:
                raise RelayFault(
                    Fault.NOT_AUTHENTICATED,
                    f"{m.name} needs a client certificate, a Clarens session or a per-job credential",
                )
            if m.access == "login" and identity.kind not in ("certificate", "proxy"):
                raise RelayFault(Fault.NOT_AUTHENTICATED, "system.auth2 needs a TLS client certificate")
            if m.access in ("user", "admin") and identity.kind == "credential":
                raise self.core.deny(identity, m.name, RelayFault(
                    Fault.ACCESS_DENIED, f"a per-job credential may call only daemon methods, not {m.name}"))
            if m.access == "admin" and not self.core.is_admin(identity):
                raise self.core.deny(identity, m.name, RelayFault(
                    Fault.ACCESS_DENIED,
                    f"{m.name} is for pool admins; {identity.dn} is not one (ask the relay's admin to add "
                    "you to 'admins' in its config or access file)"))
            if not self.core.access.allowed(identity.dn, m.name):
                raise self.core.deny(identity, m.name, RelayFault(
                    Fault.ACCESS_DENIED, f"the access file does not allow {m.name} for {identity.dn}"))
            if m.access in ("user", "auth", "admin") and identity.kind != "credential":
                try:
                    self.core.rate.check(identity.dn)
                except RelayFault as f:
                    raise self.core.deny(identity, m.name, f) from None
        params = tuple(plain(p) for p in call.params)
        m.check(params)
        return m, Ctx(self.core, identity, basic, m.name, peer), params
