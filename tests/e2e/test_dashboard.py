"""The dashboard at /ui in a real browser (Debian's Chromium driven by Playwright), on the real API and worker:
no console error, a running job's epochs drawn as they arrive, the retry button making the child job, the
compare view overlaying several jobs' curves."""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from models.settings import Settings
from tests.e2e.conftest import WorkerProcess, finished, settings_env, wait_for
from tests.servers import ApiServer, api_key
from tests.specs import DIGITS_CNN, IRIS_MLP, spec

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")  # Playwright cannot download its own browsers here: Debian's package
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium; .ci/run does)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra")

# Until POST /v1/jobs/{id}/events:token exists, the page asks for it, gets a 404 and follows the stream
# directly (anonymous localhost access); Chromium logs that 404 as a console error, the only one allowed.
TOKEN_PROBE = "/events:token"
TIMEOUT_MS = 90_000


@pytest.fixture(scope="module")
def api(e2e_settings: Settings, worker: WorkerProcess, tmp_path_factory) -> Iterator[ApiServer]:
    env = {**settings_env(e2e_settings), "TRAINYARD_ALLOW_ANONYMOUS_LOCALHOST": "true",
           "TRAINYARD_EVENTS_POLL_INTERVAL_S": "0.1"}
    server = ApiServer(env, tmp_path_factory.mktemp("dashboard") / "api.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(api: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=30) as http:  # anonymous localhost, as the page is
        yield http


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page; the test fails if the page logged an error to the console or threw."""
    context = browser.new_context()
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(f"{m.text} at {m.location.get('url')}")
           if m.type == "error" and not (TOKEN_PROBE in m.location.get("url", "") and "404" in m.text) else None)
    tab.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    yield tab
    context.close()
    assert errors == []


def submit(client: httpx.Client, body: dict[str, Any]) -> str:
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def plotted(page: Any, selector: str) -> list[dict[str, Any]]:
    """The traces Plotly holds for that chart (Plotly keeps them on the element as .data)."""
    return page.eval_on_selector(selector, "node => node.data.map(t => ({name: t.name, x: t.x, y: t.y}))")


def test_the_vendored_chart_library_comes_from_the_installed_plotly_package(client: httpx.Client):
    import plotly

    served = client.get("/ui/vendor/plotly.min.js")
    bundle = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    assert served.status_code == 200 and served.content == bundle.read_bytes()
    root = client.get("/ui")
    assert root.status_code == 307 and root.headers["location"] == "/ui/"
    assert 'src="vendor/plotly.min.js"' in client.get("/ui/").text
    assert "/ui" not in str(client.get("/openapi.json").json()["paths"])
    assert client.post("/ui/").status_code == 405 and client.get("/ui/nope.js").json()["error"]["code"] == "not_found"


def test_a_running_jobs_epochs_are_drawn_as_they_arrive(client: httpx.Client, page: Any, api: ApiServer):
    job_id = submit(client, spec(DIGITS_CNN, fit={"epochs": 8, "batch_size": 32}))
    page.goto(f"{api.url}/ui/#/jobs/{job_id}")

    seen: list[int] = []  # the number of epochs on the chart, sampled while the job trains
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        shown = page.get_attribute("#curves", "data-epochs")
        if shown is not None and (not seen or seen[-1] != int(shown)):
            seen.append(int(shown))
        if seen and seen[-1] == 8:
            break
        page.wait_for_timeout(50)

    assert seen[-1] == 8 and any(0 < n < 8 for n in seen), seen  # drawn epoch by epoch, not at the end
    page.wait_for_selector("h1 + p .status-succeeded")  # the terminal event, then the verdict
    page.wait_for_selector("#findings .finding[data-code=verdict]")
    curves = client.get(f"/v1/jobs/{job_id}/curves").json()
    traces = {t["name"]: t for t in plotted(page, "#curves")}
    assert traces["loss"]["x"] == curves["epoch"] == list(range(1, 9))
    assert traces["val_loss"]["y"] == pytest.approx(curves["val_loss"])
    assert "builtin:digits" in page.text_content("#dataset")


def test_retry_with_this_fix_creates_the_child_job(client: httpx.Client, page: Any, api: ApiServer):
    parent_id = submit(client, spec(IRIS_MLP, data={"scale_x": None}, fit={"batch_size": 2, "epochs": 1}))
    page.goto(f"{api.url}/ui/#/jobs/{parent_id}")

    page.click("#findings .finding[data-code=tiny_batch] button.retry")
    page.wait_for_function("parent => location.hash.startsWith('#/jobs/') && !location.hash.endsWith(parent)",
                           arg=parent_id)
    child_id = page.evaluate("location.hash").removeprefix("#/jobs/")

    child = client.get(f"/v1/jobs/{child_id}").json()
    assert child["parent_id"] == parent_id and child["spec"]["fit"]["batch_size"] == 32
    assert client.get(f"/v1/jobs/{parent_id}").json()["children"] == [child_id]
    page.wait_for_selector(f"#chain [data-role=parent] a[href='#/jobs/{parent_id}']")  # side by side
    client.post(f"/v1/jobs/{child_id}/cancel")  # its training is not this test's subject: free the worker


def test_the_list_filtered_by_status_then_two_jobs_compared(client: httpx.Client, page: Any, api: ApiServer):
    ids = [submit(client, spec(IRIS_MLP, fit={"epochs": epochs}, seed=epochs)) for epochs in (2, 3)]
    unfinished = submit(client, spec(DIGITS_CNN, fit={"epochs": 300}))  # queued behind them, cancelled below
    try:
        for job_id in ids:
            wait_for(client, job_id, finished)
        page.goto(f"{api.url}/ui/")
        page.wait_for_selector(f"tr[data-job='{unfinished}']")
        page.select_option("#status-filter", "succeeded")
        page.wait_for_function("location.hash === '#/jobs?status=succeeded'")
        for job_id in ids:
            page.wait_for_selector(f"#jobs tbody tr[data-job='{job_id}']")
            assert page.text_content(f"tr[data-job='{job_id}'] .verdict")  # the verdict's name in the list
        assert page.query_selector(f"tr[data-job='{unfinished}']") is None
        statuses = page.eval_on_selector_all("#jobs tbody tr .status", "nodes => nodes.map(n => n.textContent)")
        assert set(statuses) == {"succeeded"}
    finally:
        client.post(f"/v1/jobs/{unfinished}/cancel")

    for job_id in ids:
        page.check(f"tr[data-job='{job_id}'] input[type=checkbox]")
    page.click("#compare-selected")
    page.wait_for_selector("#compare-plot[data-epochs]")
    page.select_option("#compare-metric", "val_loss")
    page.wait_for_function("document.querySelector('#compare-metric').value === 'val_loss' && "
                           "document.querySelector('#compare-plot').data?.length === 2")

    traces = plotted(page, "#compare-plot")
    for job_id in ids:
        (trace,) = [t for t in traces if job_id in t["name"]]
        curves = client.get(f"/v1/jobs/{job_id}/curves").json()
        assert trace["name"].endswith("val_loss") and trace["x"] == curves["epoch"]
        assert trace["y"] == pytest.approx(curves["val_loss"])
    assert sorted(len(t["x"]) for t in traces) == [2, 3]


def test_a_pasted_api_key_is_sent_as_a_bearer_header(client: httpx.Client, page: Any, api: ApiServer,
                                                     e2e_settings: Settings):
    key = api_key(e2e_settings.database_dsn, "dashboard-keyed")
    keyed = client.post("/v1/jobs", json=spec(IRIS_MLP, fit={"epochs": 1}), headers={"Authorization": f"Bearer {key}"})
    anonymous = submit(client, spec(IRIS_MLP, fit={"epochs": 1}))
    page.goto(f"{api.url}/ui/")
    page.wait_for_selector(f"tr[data-job='{anonymous}']")

    page.fill("#api-key", key)
    page.click("#auth button[type=submit]")
    page.wait_for_selector(f"tr[data-job='{keyed.json()['id']}']")  # the key's tenant sees its own jobs only

    assert page.query_selector(f"tr[data-job='{anonymous}']") is None
    assert page.evaluate("sessionStorage.getItem('trainyard.apiKey')") == key and key not in page.url
    assert page.input_value("#api-key") == ""
    client.post(f"/v1/jobs/{keyed.json()['id']}/cancel", headers={"Authorization": f"Bearer {key}"})
    client.post(f"/v1/jobs/{anonymous}/cancel")
