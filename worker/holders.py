"""Who holds a running job: ``host:pid`` of the training process.

A holder on this host whose process is gone is known dead: its job can be
taken back at once, without waiting for its heartbeat to go stale. A holder
on another host is judged by its heartbeat only.
"""

import os
import socket


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def is_dead_here(holder: str | None) -> bool:
    """Whether ``holder`` names a process of this host that no longer exists (or is a zombie)."""
    if not holder:
        return False
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return True
    except OSError:  # no /proc (not Linux): ask the kernel instead
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    return state in ("Z", "X")  # exited, not yet reaped by its parent
