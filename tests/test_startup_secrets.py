"""Database and broker passwords never appear in what the processes print at start-up.

Celery prints its broker URL in the worker banner; migrations and a database
that cannot be reached print tracebacks. Each is run as an operator would,
with a password in the URL, and its whole output searched for it.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "hunter2-Pw0rd"

BANNER = """
from celery.apps.worker import Worker
from worker.celery_app import app
print(Worker(app=app, hostname="t@h", pool_cls="solo", without_mingle=True, without_gossip=True,
             quiet=True).startup_info())
print(app.conf.humanize(with_defaults=False, censored=True))
"""


def run(argv: list[str], **env: str) -> str:
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "TRAINYARD_WORKER_NO_TENSORFLOW": "1", **env}
    done = subprocess.run(argv, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=300)
    return done.stdout + done.stderr


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("broker", [
    f"redis://:{PASSWORD}@127.0.0.1:6379/15",
    f"redis://trainyard:{PASSWORD}@127.0.0.1:6379/15",
    f"sqla+postgresql+psycopg://trainyard:{PASSWORD}@127.0.0.1:5432/x",
    f"trainyard+postgresql+psycopg://trainyard:{PASSWORD}@127.0.0.1:5432/x",
])
def test_the_celery_banner_and_config_dump_mask_the_broker_password(tmp_path, broker):
    out = run([sys.executable, "-c", BANNER], TRAINYARD_BROKER_URL=broker, TRAINYARD_DATA_DIR=str(tmp_path))
    assert "transport:" in out, out[-2000:]
    assert PASSWORD not in out


def test_migrations_and_an_unreachable_database_do_not_print_its_password(tmp_path, pg_url):
    with_password = pg_url.replace("://postgres@", f"://postgres:{PASSWORD}@")  # trust auth ignores it
    assert PASSWORD in with_password
    out = run([sys.executable, "-m", "cli.main", "migrate"], TRAINYARD_DATABASE_URL=with_password,
              TRAINYARD_DATA_DIR=str(tmp_path))
    assert PASSWORD not in out

    down = f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:{closed_port()}/nothing"
    out = run([sys.executable, "-m", "cli.main", "migrate"], TRAINYARD_DATABASE_URL=down,
              TRAINYARD_DATA_DIR=str(tmp_path))
    assert "OperationalError" in out and PASSWORD not in out
