"""`trainyard worker` restarts a process that dies, backing off while it keeps dying."""

import subprocess
import sys

from cli.supervise import BACKOFF_FIRST_S, Supervised, stop_all


def test_a_process_that_dies_is_restarted_after_a_growing_back_off():
    starts: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        starts.append(subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"]))
        return starts[-1]

    supervised = Supervised("crashy", start)
    supervised.process.wait()
    now = supervised.started_at + 1

    supervised.check(now)  # noticed dead: a restart is scheduled, not done yet
    assert len(starts) == 1 and supervised.restart_at == now + BACKOFF_FIRST_S
    supervised.check(now + BACKOFF_FIRST_S)
    assert len(starts) == 2
    supervised.process.wait()
    supervised.check(now + BACKOFF_FIRST_S + 1)
    assert supervised.restart_at == now + BACKOFF_FIRST_S + 1 + 2 * BACKOFF_FIRST_S  # doubled
    stop_all([supervised], timeout_s=10)


def test_stop_all_sends_sigterm_and_kills_what_ignores_it():
    polite = Supervised("polite", lambda: subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]))
    stubborn = Supervised("stubborn", lambda: subprocess.Popen(
        [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(flush=True);"
         " time.sleep(60)"], stdout=subprocess.PIPE))
    stubborn.process.stdout.readline()  # its handler is in place

    stop_all([polite, stubborn], timeout_s=2)

    assert polite.process.returncode == -15 and stubborn.process.returncode == -9
