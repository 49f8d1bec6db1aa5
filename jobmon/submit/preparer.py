"""Wrapping for submissions that reach the relay unwrapped (the web form, plain XML-RPC clients).

The relay calls ``core.submit_preparer(submit, caller_dn, iwd)`` before it
queues a description (relay/submit.py). ``make_submit_preparer`` builds that
callable: descriptions already wrapped by ``jobmon submit``
(``+JobMonWrapped = true``) pass unchanged; others get the wrapper, the relay
URL, the caller's DN and, when ``issue`` is given, a fresh per-job credential
(with the relay's CA bundle beside it when ``ca_pem`` is given).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import htcondor2

from jobmon.submit.credentials import write_ca_bundle, write_credential
from jobmon.submit.rewrite import WrapOptions, is_wrapped, wrap_submit

#: issue(caller_dn) -> (token, credential id)
Issuer = Callable[[str], "tuple[str, str]"]


def make_submit_preparer(relay_url: str, state_dir: Path, issue: Issuer | None = None,
                         wrapper: str | None = None, ca_pem: str = "") -> Callable[[htcondor2.Submit, str, str], htcondor2.Submit]:
    def prepare(submit: htcondor2.Submit, caller_dn: str, iwd: str) -> htcondor2.Submit:
        if is_wrapped(submit):
            return submit
        if wrapper is None:
            from jobmon.wrapperzip import wrapper_path

            wrapper_file = str(wrapper_path())
        else:
            wrapper_file = wrapper
        cred_file = cred_id = ca_file = None
        if issue is not None:
            token, cred_id = issue(caller_dn)
            cred_file = str(write_credential(state_dir, cred_id, token))
            if ca_pem:
                ca_file = str(write_ca_bundle(state_dir, cred_id, ca_pem))
        wrap_submit(submit, WrapOptions(wrapper_file, relay_url, owner_dn=caller_dn,
                                        credential_file=cred_file, credential_id=cred_id, ca_file=ca_file))
        return submit

    return prepare
