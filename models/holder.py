"""Which process holds a job, and whether that process is known to be dead.

A claim records the holder's host, pid and the process's start time (and the
boot and pid namespace it lives in). On the same host and in the same pid
namespace, a holder whose pid is gone, or was reused by a process that started
at another time, is dead for certain: its job can be taken back at once
instead of waiting for its heartbeat to go stale. Anything else (another host,
another container, no /proc) is "not known dead": the heartbeat decides.
"""

import os
import socket
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

PROC = Path("/proc")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat); None if it is gone."""
    stat = _read(PROC / str(pid) / "stat")
    if stat is None:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its closing one.
    return int(stat.rsplit(")", 1)[1].split()[19])


def _namespace() -> str | None:
    try:
        return os.readlink(PROC / "self" / "ns" / "pid")
    except OSError:
        return None


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    started: int | None  # clock ticks since boot
    boot: str | None  # /proc/sys/kernel/random/boot_id: a reboot reuses pids
    namespace: str | None  # pid namespace: a pid means something only inside its own

    @property
    def name(self) -> str:
        return f"{self.host}:{self.pid}"

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "Holder | None":
        return cls(**data) if data else None


@cache
def _this_process(pid: int) -> Holder:
    return Holder(host=socket.gethostname(), pid=pid, started=process_start(pid),
                  boot=_read(PROC / "sys" / "kernel" / "random" / "boot_id"), namespace=_namespace())


def this_process() -> Holder:
    return _this_process(os.getpid())  # keyed by pid: a forked child is another holder


def is_dead(holder: Holder | None) -> bool:
    """True only when ``holder`` is certainly not running (see the module's docstring)."""
    if holder is None:
        return False
    here = this_process()
    if holder.host != here.host or holder.namespace is None or holder.namespace != here.namespace:
        return False  # its processes are not visible from here
    if holder.boot is not None and here.boot is not None and holder.boot != here.boot:
        return True  # the host rebooted since it claimed
    if holder.started is None:
        return False
    return process_start(holder.pid) != holder.started
