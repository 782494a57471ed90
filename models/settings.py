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

    max_upload_bytes: int = Field(default=2 * 1024**3, gt=0)
    max_epochs: int = Field(default=10_000, gt=0)
    page_size_max: int = Field(default=200, gt=0)

    # Reliability: the database is the source of truth, the broker only carries ids.
    reconcile_interval_s: float = Field(default=30.0, gt=0)
    queued_stale_after_s: float = Field(default=300.0, gt=0)
    heartbeat_interval_s: float = Field(default=10.0, gt=0)
    running_stale_after_s: float = Field(default=120.0, gt=0)
    max_attempts: int = Field(default=3, gt=0)

    @property
    def database_dsn(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{(self.data_dir / 'trainyard.db').resolve()}"

    @property
    def broker_dsn(self) -> str:
        if self.broker_url is not None:
            return self.broker_url.get_secret_value()
        return f"sqla+sqlite:///{(self.data_dir / 'broker.db').resolve()}"

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


def celery_options(settings: Settings) -> dict[str, object]:
    """Broker options shared by the API (which only sends) and the workers.

    Plain data, so this module still imports no Celery.
    """
    options: dict[str, object] = {
        "task_ignore_result": True,
        "task_default_queue": settings.train_queue,
        "broker_connection_retry_on_startup": True,
    }
    if settings.broker_dsn.startswith("sqla+"):
        options["broker_transport"] = "broker.embedded:Transport"
    elif settings.broker_dsn.startswith("redis"):
        # Longer than any epoch: an unacked message is only redelivered after this.
        options["broker_transport_options"] = {"visibility_timeout": 6 * 3600}
    return options
