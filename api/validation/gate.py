"""Per-tenant turns at the validator pool, so one tenant cannot occupy every child."""

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager


class PoolBusy(Exception):
    """No turn within the wait: try again in ``retry_after_s`` seconds."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s


class TenantGate:
    """At most ``per_tenant`` requests of one tenant run at once; the next few wait
    their turn (a bounded number, for a bounded time), any more are refused at once."""

    def __init__(self, per_tenant: int, waiting_per_tenant: int) -> None:
        self.per_tenant = per_tenant
        self.waiting_per_tenant = waiting_per_tenant
        self._changed = threading.Condition()
        self._running: Counter[str] = Counter()
        self._waiting: Counter[str] = Counter()

    def running(self, tenant: str) -> int:
        with self._changed:
            return self._running[tenant]

    @contextmanager
    def turn(self, tenant: str, wait_s: float, retry_after_s: float) -> Iterator[None]:
        with self._changed:
            if self._waiting[tenant] >= self.waiting_per_tenant:
                raise PoolBusy(self._busy(tenant, "and as many waiting"), retry_after_s)
            self._waiting[tenant] += 1
            try:
                turn = self._changed.wait_for(lambda: self._running[tenant] < self.per_tenant, timeout=wait_s)
            finally:
                self._waiting[tenant] -= 1
                if not self._waiting[tenant]:  # tenants come and go: keep no zero counts
                    del self._waiting[tenant]
            if not turn:
                raise PoolBusy(self._busy(tenant, f"for longer than {wait_s:g} s"), retry_after_s)
            self._running[tenant] += 1
        try:
            yield
        finally:
            with self._changed:
                self._running[tenant] -= 1
                if not self._running[tenant]:
                    del self._running[tenant]
                self._changed.notify_all()

    def _busy(self, tenant: str, how: str) -> str:
        return (f"tenant '{tenant}' already has {self.per_tenant} spec check(s) running {how}; "
                "wait for them to finish, then retry")
