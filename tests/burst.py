"""A burst of concurrent job submissions, for the burst test and bench/burst.py."""

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Answer:
    idempotency_key: str
    status: int  # 0: no answer (the connection was dropped or the client timed out)
    seconds: float
    job_id: str | None
    headers: dict[str, str]
    first_status: int = 0  # the answer to the first attempt (429 with Retry-After is retried)
    attempts: int = 1
    dropped: int = 0  # attempts whose connection closed before an answer (then retried: the key makes it safe)


def burst_keys(requests: int, once: int, repeated: int, tag: str) -> list[str]:
    """``once`` keys sent once each, then ``repeated`` keys sharing the other requests, shuffled."""
    keys = [f"{tag}-once-{i}" for i in range(once)]
    keys += [f"{tag}-rep-{i % repeated}" for i in range(requests - once)] if repeated else []
    random.Random(0).shuffle(keys)  # the repeats of a key arrive mixed with everything else
    return keys


async def _fire(url: str, api_key: str, keys: list[str], body: dict[str, Any], timeout: float,
                retries: int) -> list[Answer]:
    limits = httpx.Limits(max_connections=len(keys), max_keepalive_connections=len(keys))
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits,
                                 headers={"Authorization": f"Bearer {api_key}"}) as client:
        async def one(key: str) -> Answer:
            start, first, dropped = time.perf_counter(), 0, 0
            for attempt in range(1, retries + 2):
                try:
                    response = await client.post("/v1/jobs", json=body, headers={"Idempotency-Key": key})
                except httpx.TransportError:
                    # A kept-alive connection the server closed as this request went out (its idle
                    # timeout, after a Retry-After wait): with an Idempotency-Key, sending again is safe.
                    dropped += 1
                    if attempt > retries:
                        return Answer(key, 0, time.perf_counter() - start, None, {}, first, attempt, dropped)
                    continue
                first = first or response.status_code
                # As a well-behaved client does: a 429 that says when to come back is retried then.
                retry_after = response.headers.get("retry-after")
                if response.status_code != 429 or retry_after is None or attempt > retries:
                    break
                await asyncio.sleep(float(retry_after) * (1 + random.random()))  # jittered, as clients should
            job_id = response.json().get("id") if response.status_code == 202 else None
            return Answer(key, response.status_code, time.perf_counter() - start, job_id, dict(response.headers),
                          first, attempt, dropped)

        return list(await asyncio.gather(*(one(key) for key in keys)))


def fire(url: str, api_key: str, keys: list[str], body: dict[str, Any], timeout: float = 300,
         retries: int = 0) -> list[Answer]:
    """POST /v1/jobs once per key, all at once, each request on its own connection; with
    ``retries``, a 429 that carries Retry-After is sent again after that long, at most that often."""
    return asyncio.run(_fire(url, api_key, keys, body, timeout, retries))
