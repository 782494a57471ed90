"""Run as ``python -m tests.worker.mirrored_run DIR``: in a process of its own (its TensorFlow
configuration must not reach the test process), split the CPU into two logical devices, train
the same job on one device and with ``resources.gpus: 2`` (MirroredStrategy over the two), and
print each run's curve, devices and the diagnosis probe's results as one JSON line."""

import json
import sys
from pathlib import Path

import tensorflow as tf

from tests.specs import IRIS_MLP, spec

EPOCHS = 6


def main(folder: Path) -> None:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    from sqlalchemy import select

    from migrations import upgrade
    from models.db import make_engine, make_session_factory
    from models.settings import Settings
    from models.tables import EpochMetric, Job
    from tests.worker.conftest import insert_job
    from worker import monitor
    from worker.training import run_training

    probes: list[tuple[float | None, list[float] | None]] = []
    probe = monitor.DiagnosisMonitor._probe

    def recorded(self: monitor.DiagnosisMonitor) -> tuple[float | None, list[float] | None]:
        probes.append(result := probe(self))
        return result

    monitor.DiagnosisMonitor._probe = recorded  # type: ignore[method-assign]
    settings = Settings(data_dir=folder, heartbeat_interval_s=3600)
    settings.artifacts.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_dsn)
    factory = make_session_factory(make_engine(settings.database_dsn))
    out = {}
    for gpus in (0, 2):
        probes.clear()
        job_id = insert_job(factory, spec(IRIS_MLP, fit={"epochs": EPOCHS, "batch_size": 16},
                                          resources={"gpus": gpus}))
        run_training(factory, job_id, settings=settings)
        with factory() as session:
            job = session.get_one(Job, job_id)
            rows = session.scalars(select(EpochMetric).where(EpochMetric.job_id == job_id)
                                   .order_by(EpochMetric.epoch)).all()
            out[str(gpus)] = {"status": job.status.value, "error": job.error,
                              "devices": (job.data_summary or {}).get("devices"),
                              "loss": [r.metrics["loss"] for r in rows],
                              "val_loss": [r.metrics["val_loss"] for r in rows],
                              "probes": list(probes)}
    print(json.dumps(out))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
