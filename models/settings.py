"""One settings object for every process, read from ``TRAINYARD_*`` variables.

The defaults describe the embedded mode: everything lives under ``data_dir``
(a SQLite database, a SQLite-backed Celery broker and the artifact folder), so
one machine needs no server at all. Distributed mode sets ``database_url``,
``broker_url`` and ``artifact_root`` to shared services.
"""

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRAINYARD_", extra="ignore")

    data_dir: Path = Path("var")
    database_url: SecretStr | None = None
    broker_url: SecretStr | None = None
    artifact_root: Path | None = None

    # Queue the API sends training to; CPU workers consume "cpu", GPU workers "gpu".
    train_queue: str = "cpu"

    # Access: every request needs an API key, unless this allows anonymous calls from
    # the same machine (they act as anonymous_tenant). Off by default, even embedded.
    allow_anonymous_localhost: bool = False
    anonymous_tenant: str = "default"
    api_key_cache_s: float = Field(default=5.0, ge=0, description="a revoked key stops working within this")
    # Per-tenant limits.
    max_queued_jobs_per_tenant: int = Field(default=100, gt=0)
    max_epoch_samples: int = Field(default=2_000_000_000, gt=0, description="epochs x training samples of one job")
    max_request_bytes: int = Field(default=8 * 1024**2, gt=0, description="JSON request bodies")

    max_upload_bytes: int = Field(default=2 * 1024**3, gt=0)
    # What one upload may unpack to (zip bombs), members of one zip, pixels of one image.
    max_unpacked_bytes: int = Field(default=8 * 1024**3, gt=0)
    max_archive_members: int = Field(default=200_000, gt=0)
    max_image_pixels: int = Field(default=40_000_000, gt=0)
    max_epochs: int = Field(default=10_000, gt=0)
    page_size_max: int = Field(default=200, gt=0)

    # Reliability: the database is the source of truth, the broker only carries ids.
    queued_stale_after_s: float = Field(default=300.0, gt=0)
    max_attempts: int = Field(default=3, gt=0)

    # Recovery: how fast a job whose worker died runs again. A job whose worker was
    # killed is taken back once its heartbeat is stale (5 missed beats) at the next
    # reconcile: within running_stale_after_s + reconcile_interval_s (20 s). A holder
    # known dead (its process is gone from this host) is taken back at once.
    heartbeat_interval_s: float = Field(default=3.0, gt=0)
    running_stale_after_s: float = Field(default=15.0, gt=0)
    reconcile_interval_s: float = Field(default=5.0, gt=0)
    # On SIGTERM a worker stops its job at the next epoch boundary, or after this many
    # seconds at a batch boundary (the partial epoch is recomputed), hands the job back
    # and exits. A deployment's kill timeout (compose stop_grace_period) must be longer.
    stop_grace_s: float = Field(default=30.0, gt=0)

    # Live results: each API process polls job_events once per interval for every
    # job that has SSE clients, however many clients watch it.
    events_poll_interval_s: float = Field(default=0.5, gt=0)

    # Webhooks. Deliveries have their own queue so a slow receiver never holds a
    # training worker. Retries wait base, 2*base, ... up to max between attempts:
    # the defaults (5 s .. 10 min, 16 attempts) keep trying for about 1 h 40 min.
    webhook_queue: str = "webhooks"
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    webhook_retry_base_s: float = Field(default=5.0, gt=0)
    webhook_retry_max_s: float = Field(default=600.0, gt=0)
    webhook_max_attempts: int = Field(default=16, gt=0)
    # Off: receivers on private, loopback or link-local addresses are refused, so a
    # job cannot make the service call into its own network. On for local testing.
    webhook_allow_private: bool = False

    @property
    def database_dsn(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{(self.data_dir / 'trainyard.db').resolve()}"

    @property
    def broker_dsn(self) -> str:
        if self.broker_url is not None:
            return self.broker_url.get_secret_value()
        # "trainyard+": the embedded transport in broker/embedded.py (kombu's SQLAlchemy one, tuned).
        return f"trainyard+sqlite:///{(self.data_dir / 'broker.db').resolve()}"

    @property
    def artifacts(self) -> Path:
        return (self.artifact_root or self.data_dir / "artifacts").resolve()

    @property
    def embedded(self) -> bool:
        return self.database_url is None and self.broker_url is None


@lru_cache
def get_settings() -> Settings:
    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.artifacts.mkdir(parents=True, exist_ok=True)
    return settings


def resume_queue(train_queue: str) -> str:
    """Where jobs that already waited or ran are sent again (handed back, lost, their worker
    dead): training workers take from it before ``train_queue``, so such a job keeps its
    place ahead of later submissions instead of going to the back of the queue."""
    return f"{train_queue}.resume"


def celery_options(settings: Settings) -> dict[str, object]:
    """Broker options shared by the API (which only sends) and the workers.

    Plain data, so this module still imports no Celery.
    """
    options: dict[str, object] = {
        "task_ignore_result": True,
        "task_default_queue": settings.train_queue,
        "broker_connection_retry_on_startup": True,
    }
    if settings.broker_dsn.startswith("redis"):
        # Longer than any epoch: an unacked message is only redelivered after this.
        # "priority": a worker polls its queues in the order given (the resume queue first),
        # instead of kombu's default round robin between them.
        options["broker_transport_options"] = {"visibility_timeout": 6 * 3600, "queue_order_strategy": "priority"}
    return options
