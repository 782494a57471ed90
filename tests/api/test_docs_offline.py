"""/docs and /redoc load nothing from another host: their scripts and styles are served by the app,
from the bundles pip installed (fastapi-offline), so they work offline."""

import re
from urllib.parse import urlparse

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from models.settings import Settings

REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\s*:\s*["']([^"']+)["']""")


@pytest.fixture(scope="module")
def client(tmp_path_factory) -> TestClient:
    return TestClient(create_app(Settings(data_dir=tmp_path_factory.mktemp("docs"))))


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_reference_only_the_apps_own_files(client: TestClient, page):
    response = client.get(page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "cdn." not in html and "googleapis" not in html and "unpkg" not in html
    references = [a or b for a, b in REFERENCE.findall(html)]
    scripts = [r for r in references if r.endswith(".js")]
    assert scripts, html  # the page does load a bundle
    for reference in references:
        assert not urlparse(reference).netloc, f"{page} loads {reference} from another host"
        if reference.startswith("/") and reference != "/openapi.json":
            asset = client.get(reference)
            assert asset.status_code == 200 and len(asset.content) > 1000, reference
    assert all(client.get(s).content.strip() for s in scripts)


def test_swagger_keeps_the_key_across_reloads_and_authorize_has_a_scheme(client: TestClient):
    assert '"persistAuthorization": true' in client.get("/docs").text
    doc = client.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    token_op = doc["paths"]["/v1/jobs/{job_id}/events:token"]["post"]
    assert token_op["security"] == [{"HTTPBearer": []}]
    assert "201" in token_op["responses"]
    params = {p["name"] for p in doc["paths"]["/v1/jobs/{job_id}/events"]["get"]["parameters"]}
    assert "token" in params and "authorization" not in {p.lower() for p in params}
