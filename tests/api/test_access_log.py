"""Stream tokens (and any key-like query parameter) never reach the access log of a real server."""

import httpx

from api.access_log import redact
from tests.conftest import REDIS_URL
from tests.servers import ApiServer, api_env, wait_until
from tests.worker.conftest import finished_job_database


def test_redact_masks_key_like_parameters_only():
    assert redact("/v1/jobs/j/events?token=a.b&last_event_id=3&api_key=k&X-Secret=s") == (
        "/v1/jobs/j/events?token=***&last_event_id=3&api_key=***&X-Secret=***")
    assert redact("/v1/jobs?status=running&tokenizer=") == "/v1/jobs?status=running&tokenizer=***"
    assert redact("/v1/jobs?status=running") == "/v1/jobs?status=running"


def test_the_uvicorn_access_log_of_a_real_request_shows_no_token(tmp_path):
    with finished_job_database("trainyard_accesslog") as db:
        key, job_id = db.key, db.job_id
        api = ApiServer(api_env(database_url=db.url, broker_url=REDIS_URL, data_dir=tmp_path, validator_processes=1),
                        tmp_path / "api.log")
        try:
            answer = httpx.post(f"{api.url}/v1/jobs/{job_id}/events:token",
                                headers={"Authorization": f"Bearer {key}"})
            assert answer.status_code == 201, answer.text
            token = answer.json()["token"]
            stream = httpx.get(api.url + answer.json()["url"] + "&last_event_id=0")
            assert stream.status_code == 200 and "job.succeeded" in stream.text
            refused = httpx.get(f"{api.url}/v1/jobs/{job_id}/events?token={token}x&api_key={key}")
            assert refused.status_code == 401
            logged = wait_until(lambda: text if (text := api.log_text()).count("/events?token=***") >= 2 else None,
                                30, "both stream requests in the access log")
            assert "&last_event_id=0" in logged  # the rest of the query string is kept
            assert token[:20] not in logged and key not in logged and key[:10] not in logged
        finally:
            api.stop()
