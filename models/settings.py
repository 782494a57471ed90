"""One settings object for every process, read from ``TRAINYARD_*`` variables.

The defaults describe the embedded mode: everything lives under ``data_dir``
(a SQLite database, a SQLite-backed Celery broker and the artifact folder), so
one machine needs no server at all. Distributed mode sets ``database_url``,
``broker_url`` and ``artifact_root`` to shared services.
"""

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

BUDGET_SETTINGS = ("max_model_params", "max_layers", "worker_memory_bytes", "max_argument_depth",
                   "max_argument_scalars", "max_argument_string")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRAINYARD_", extra="ignore")

    data_dir: Path = Path("var")
    database_url: SecretStr | None = None
    broker_url: SecretStr | None = None
    artifact_root: Path | None = None

    # Queue the API sends training to; CPU workers consume "cpu", GPU workers "gpu".
    train_queue: str = "cpu"

    # Job slots (issue 12): how many jobs one worker host trains at once, each in a process of its
    # own (one job's crash, abort or out-of-memory kill touches no other). A CPU host runs
    # cpu_slots; unset: one per core, fewer when the memory of a slot (worker_memory_bytes +
    # worker_runtime_bytes, each slot's RLIMIT_DATA) times the slots would pass the host's RAM.
    # A GPU host runs gpu_slots per GPU, each with a memory share of gpu_slot_memory_mb
    # (unset: the GPU's memory divided by gpu_slots; one slot per GPU keeps memory growth).
    cpu_slots: int | None = Field(default=None, gt=0)
    gpu_slots: int = Field(default=1, gt=0, le=64)
    gpu_slot_memory_mb: int | None = Field(default=None, gt=0)
    # The most GPUs any worker host offers one job: a job asking for more (resources.gpus) is
    # refused at submit with a 422. Unset: not checked, such a job waits queued for a host.
    max_job_gpus: int | None = Field(default=None, ge=0, le=8)

    # Access: every request needs an API key, unless this allows anonymous calls from
    # the same machine (they act as anonymous_tenant). Off by default, even embedded.
    allow_anonymous_localhost: bool = False
    anonymous_tenant: str = "default"
    api_key_cache_s: float = Field(default=5.0, ge=0, description="a revoked key stops working within this")
    # Browsers. Pages on these origins (comma-separated, e.g. "https://dash.example.com") may call the
    # API (CORS); none by default. An EventSource, which cannot send a header, authenticates with a
    # stream token (api/stream_tokens.py); a same-origin page may use a session cookie
    # (api/routers/session.py). Both are signed with stream_secret, which every API process of
    # a deployment must share; unset, one is made at the first start and kept in <data_dir>/stream-secret
    # (distributed: <artifact_root>/.stream-secret, the volume the API processes share).
    cors_origins: str = ""
    stream_secret: SecretStr | None = None
    stream_token_ttl_s: float = Field(default=300.0, gt=0, description="time to start a stream with a token")
    session_ttl_s: float = Field(default=8 * 3600.0, gt=0, description="a same-origin page's session cookie")
    # Per-tenant limits.
    max_queued_jobs_per_tenant: int = Field(default=100, gt=0)
    max_epoch_samples: int = Field(default=2_000_000_000, gt=0, description="epochs x training samples of one job")
    max_request_bytes: int = Field(default=8 * 1024**2, gt=0, description="JSON request bodies")

    max_upload_bytes: int = Field(default=2 * 1024**3, gt=0)
    # What one upload may unpack to (zip bombs), members of one zip, pixels of one image.
    max_unpacked_bytes: int = Field(default=8 * 1024**3, gt=0)
    max_archive_members: int = Field(default=200_000, gt=0)
    max_image_pixels: int = Field(default=40_000_000, gt=0)
    # Uploads: arrays of one .npz (each is a mapped file: one descriptor while read) and
    # columns of one CSV (checked on the header line). Stale upload files (*.part,
    # *.staging, dataset folders without a row) older than the grace period are swept
    # at API start-up and every sweep interval (by the control worker's beat).
    max_npz_members: int = Field(default=1_000, gt=0)
    max_csv_columns: int = Field(default=4_096, gt=0)
    upload_grace_s: float = Field(default=3600.0, ge=0, description="an upload file untouched this long is stale")
    upload_sweep_interval_s: float = Field(default=900.0, gt=0)
    max_epochs: int = Field(default=10_000, gt=0)
    page_size_max: int = Field(default=200, gt=0)

    # Validator pool (issue 8): the API checks specs with Keras in child processes, never
    # in itself. Each child serves one request at a time, under a memory limit
    # (RLIMIT_DATA; TensorFlow itself takes about 0.3 GiB of it) and a time limit; a
    # tenant has at most validator_per_tenant checks running, so with the defaults one
    # tenant's slow specs leave a child free for everyone else. A request that finds
    # no turn within validator_queue_wait_s gets 429 with Retry-After.
    validator_processes: int = Field(default=2, gt=0)
    validator_per_tenant: int = Field(default=1, gt=0)
    validator_memory_bytes: int = Field(default=2 * 1024**3, ge=768 * 1024**2)
    validator_timeout_s: float = Field(default=60.0, gt=0)
    validator_queue_wait_s: float = Field(default=30.0, ge=0)

    # Budgets (issue 8): what one spec may cost, checked from shapes before anything is
    # allocated, by :validate and again by the worker before it initialises weights.
    max_model_params: int = Field(default=50_000_000, gt=0, description="parameters of one model")
    max_layers: int = Field(default=200, gt=0, description="layers of one model, nested ones included")
    # What one training batch may take (inputs, activations and their gradients, weights,
    # gradients and optimizer slots): the memory a worker of train_queue offers one job.
    worker_memory_bytes: int = Field(default=4 * 1024**3, gt=0)
    # What a training process needs beyond that (TensorFlow itself, dense data kept in memory
    # up to 512 MiB, the pipeline's buffers). On CPU hosts the two together are the process's
    # RLIMIT_DATA, so a job past its memory fails as OutOfMemory (worker/memory_limit.py).
    worker_runtime_bytes: int = Field(default=2 * 1024**3, ge=0)
    # Free-form argument values (a Constant initializer's value, a list of sizes, ...).
    # At most 64: a stored spec is dumped to JSON, which pydantic refuses past ~255 levels.
    max_argument_depth: int = Field(default=8, gt=0, le=64, description="nesting of lists/objects in one argument")
    max_argument_scalars: int = Field(default=10_000, gt=0, description="numbers/strings in one argument")
    max_argument_string: int = Field(default=1_000, gt=0, description="characters of one string argument")

    def budgets(self) -> dict[str, int]:
        """The budget settings alone: the API sends them with each spec to its validator
        processes, so a check obeys the API's settings, not whatever a child started with."""
        return self.model_dump(include=set(BUDGET_SETTINGS))

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
    # The resume-after-crash checkpoint is written after an epoch once this many seconds
    # passed since the last one (0: after every epoch), and always before a job is handed
    # back. Saving a small model costs ~20-130 ms (Keras's weights file): after every
    # 0.2 s epoch that was a third of the job. A crash loses at most this much training
    # (plus the epoch it was in); the resumed run trains it again, epochs recorded once.
    checkpoint_interval_s: float = Field(default=10.0, ge=0)

    # Live results: each API process reads job_events for every job that has SSE
    # clients, once per wake-up however many clients watch it. In distributed mode
    # a committed event wakes it (Postgres LISTEN/NOTIFY, events_push); otherwise,
    # and while the listener is reconnecting, it polls every events_poll_interval_s.
    events_poll_interval_s: float = Field(default=0.5, gt=0)
    events_push: bool = True
    # A client this many live events behind (a stalled connection) is dropped; its
    # EventSource reconnects with Last-Event-ID and replays the rest from the database.
    events_client_backlog: int = Field(default=1000, gt=0)

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

    # Pools and outages. Each API request that touches the database is admitted
    # only while a pooled connection is surely free for it (db_pool_size +
    # db_max_overflow - db_pool_reserve at a time; the reserve is for the probes,
    # key lookups and event polls that take a connection for one short step), and
    # api_threads must exceed that number, so an admitted request never holds a
    # connection while no thread is left to run its next step. A request that
    # waits longer than db_admission_timeout_s for a slot, or a database or
    # broker that is away, answers 503 with Retry-After: outage_retry_after_s.
    db_pool_size: int = Field(default=10, gt=0)
    db_max_overflow: int = Field(default=10, ge=0)
    db_pool_reserve: int = Field(default=4, gt=0, description="connections kept for one-step users")
    db_pool_timeout_s: float = Field(default=10.0, gt=0, description="wait for a pooled connection")
    db_connect_timeout_s: int = Field(default=5, gt=0, description="connecting to Postgres")
    db_admission_timeout_s: float = Field(default=30.0, gt=0, description="a request's wait for a database slot")
    api_threads: int = Field(default=40, gt=0, description="the API's worker threads (sync routes, dependencies)")
    broker_send_timeout_s: float = Field(default=2.0, gt=0, description="connecting to and writing to the broker")
    outage_retry_after_s: int = Field(default=5, gt=0)

    @model_validator(mode="after")
    def _pools_fit(self) -> "Settings":
        if self.db_pool_reserve >= self.db_pool_size + self.db_max_overflow:
            raise ValueError("db_pool_reserve must be smaller than db_pool_size + db_max_overflow")
        if self.api_threads <= self.db_admitted_requests:
            raise ValueError(f"api_threads ({self.api_threads}) must exceed the requests admitted to the database "
                             f"at once ({self.db_admitted_requests} = "
                             "db_pool_size + db_max_overflow - db_pool_reserve)")
        return self

    @property
    def db_admitted_requests(self) -> int:
        """How many requests may hold a pooled connection at once."""
        return self.db_pool_size + self.db_max_overflow - self.db_pool_reserve

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip().rstrip("/") for origin in self.cors_origins.split(",") if origin.strip()]

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
    """This process's settings, read once from the environment (``TRAINYARD_*``), their folders made."""
    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.artifacts.mkdir(parents=True, exist_ok=True)
    return settings


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
