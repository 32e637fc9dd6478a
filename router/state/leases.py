"""Who holds a bulk item: each router process's owner id, and whether a holder is known to be dead.

An item being run carries its owner and a `lease_until` the owner renews. Another replica reclaims
it when the lease has run out, or at once when the owner was a process of this host that no longer
exists (a router restarted in place need not wait for the lease). Nothing else puts a running item
back: a replica starting up leaves its peers' work alone.
"""

from __future__ import annotations

import os
import secrets
import socket


def new_owner() -> str:
    """This process's owner id: host, pid and a random part (a pid can be reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def dead_here(owner: str) -> bool:
    """Whether `owner` was a process of this host that is gone (False when unknown, or elsewhere)."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False
