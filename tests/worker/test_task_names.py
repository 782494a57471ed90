"""The names in broker/tasks.py are the ones the worker registers and the senders use."""

from broker import tasks as names
from broker.tasks import Sender
from models.settings import Settings


def test_every_task_named_in_broker_tasks_is_registered_by_the_worker_and_every_beat_entry_too():
    from worker.celery_app import app

    app.loader.import_default_modules()  # the modules of `include=`, as a worker process imports them
    declared = {value for key, value in vars(names).items() if key.endswith("_TASK")}
    assert declared == {"trainyard.train", "trainyard.reconcile", "trainyard.deliver_webhooks",
                        "trainyard.deliver_sweep_webhooks", "trainyard.sweep_webhooks", "trainyard.sweep_uploads",
                        "trainyard.build_ensemble"}
    assert declared <= set(app.tasks)
    assert {entry["task"] for entry in app.conf.beat_schedule.values()} <= declared


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict]] = []

    def send_task(self, name: str, *args, **options) -> None:
        self.sent.append((name, options))


def test_the_api_and_the_worker_send_each_message_by_the_same_name_to_the_same_queue():
    settings = Settings(train_queue="q", webhook_queue="hooks")
    api, worker = Recorder(), Recorder()
    for recorder, policy in ((api, {"max_retries": 1}), (worker, None)):
        send = Sender(recorder, settings, retry_policy=policy)
        send.train("job_1")
        send.resume("job_1")
        send.deliveries("job_1")

    def route(recorder: Recorder) -> list[tuple[str, str, dict]]:
        return [(name, options["queue"], options["kwargs"]) for name, options in recorder.sent]

    assert route(api) == route(worker) == [
        (names.TRAIN_TASK, "q", {"job_id": "job_1"}), (names.TRAIN_TASK, "q.resume", {"job_id": "job_1"}),
        (names.DELIVER_WEBHOOKS_TASK, "hooks", {"job_id": "job_1"})]
    assert api.sent[0][1]["retry_policy"] == {"max_retries": 1} and "retry_policy" not in worker.sent[0][1]
    assert api.sent[2][1]["retry"] is False  # a wake-up never stalls its sender on broker retries
