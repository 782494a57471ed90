"""The README's dashboard snippet, run in Chromium from another origin: it lists jobs with the key
in the header (CORS) and follows a job's events with a stream token. From an origin that is not
allowed, the browser gets nothing."""

import functools
import http.server
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from models.enums import EventType
from tests.conftest import REDIS_URL
from tests.servers import ApiServer, api_env, free_port
from tests.worker.conftest import finished_job_database

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.e2e
README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
CHROMIUM = "/usr/bin/chromium"


def snippet(api: str, key: str, job_id: str) -> str:
    html = re.search(r"```html\n(<pre id=\"out\">.*?)```", README, flags=re.DOTALL).group(1)
    return (html.replace('"http://127.0.0.1:8000"', f'"{api}"').replace('"ty_…"', f'"{key}"')
            .replace('"job_…"', f'"{job_id}"'))


@pytest.fixture
def page_server(tmp_path) -> Iterator[int]:
    """A static file server for the page, on an origin of its own."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port("TRAINYARD_TEST_PAGE_PORTS", "18900-18949")),
                                             handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def test_the_readme_dashboard_snippet_works_from_an_allowed_origin_only(tmp_path, page_server: int):
    if not Path(CHROMIUM).exists():
        pytest.skip("no Chromium at /usr/bin/chromium")
    events = (EventType.queued, EventType.started, EventType.succeeded)
    with finished_job_database("trainyard_browser", events=events) as db:
        key, job_id = db.key, db.job_id
        allowed = f"http://127.0.0.1:{page_server}"
        api = ApiServer(api_env(database_url=db.url, broker_url=REDIS_URL, data_dir=tmp_path / "var",
                                validator_processes=1, cors_origins=allowed), tmp_path / "api.log")
        try:
            (tmp_path / "index.html").write_text(snippet(api.url, key, job_id))
            (tmp_path / "favicon.ico").write_bytes(b"")  # not a 404 in the console
            with sync_api.sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                try:
                    page = browser.new_page()
                    errors: list[str] = []
                    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
                    page.on("pageerror", lambda error: errors.append(str(error)))
                    page.goto(f"{allowed}/index.html")
                    page.wait_for_function("document.getElementById('out').textContent.includes('job.succeeded')",
                                           timeout=30_000)
                    out = page.inner_text("#out")
                    assert "job.started" in out and job_id in out  # the stream, and the list fetched with the key
                    assert errors == []
                    # The same page from another origin (localhost is not 127.0.0.1): the browser blocks it all.
                    other = browser.new_page()
                    with other.expect_console_message(lambda message: "CORS" in message.text, timeout=30_000):
                        other.goto(f"http://localhost:{page_server}/index.html")
                    assert other.inner_text("#out").strip() == ""
                finally:
                    browser.close()
            assert key not in api.log_text() and "token=***" in api.log_text()
        finally:
            api.stop()
