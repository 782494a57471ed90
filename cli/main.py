"""``trainyard``: one entry point for every process of the service."""

import argparse
import os
import signal
import sys
import threading
from functools import partial

from broker.tasks import CONTROL_QUEUE, training_queues
from cli import client, keys, processes, supervise, sweeps, tensorboard
from models.settings import get_settings

SAMPLE = """
Trainyard is running on http://{host}:{port}  (API docs: http://{host}:{port}/docs)

Submit a sample job (a small CNN on the built-in digits) and follow it:
  export TRAINYARD_API_KEY=$(cat {key_file})
  .venv/bin/trainyard submit examples/digits-cnn.json --follow
or with curl:
  curl -s -X POST http://{host}:{port}/v1/jobs -H "Authorization: Bearer $TRAINYARD_API_KEY" \\
       -H 'Content-Type: application/json' -d @examples/digits-cnn.json
  curl -s -H "Authorization: Bearer $TRAINYARD_API_KEY" http://{host}:{port}/v1/jobs/<id>
"""


def _migrate(args: argparse.Namespace) -> None:
    from migrations import downgrade, upgrade
    from sweeps.storage import prepare

    dsn = get_settings().database_dsn
    if args.downgrade:
        downgrade(dsn, args.downgrade)
    else:
        upgrade(dsn, args.revision)
        prepare(dsn)  # Optuna's own tables (sweeps), beside the service's: sweeps/storage.py


def _api(args: argparse.Namespace) -> None:
    import uvicorn

    # Open event streams never end by themselves: give them 5 s on shutdown, then close them.
    uvicorn.run("api.app:create_app", factory=True, host=args.host, port=args.port, log_level="info",
                timeout_graceful_shutdown=5)


def _worker(args: argparse.Namespace) -> None:
    if args.control:
        plan = processes.control_plane(get_settings().webhook_queue)
    else:
        settings = get_settings()
        gpus = processes.count_gpus() if args.gpus == "auto" else int(args.gpus)
        slots = processes.Slots.of_host(settings, gpus, processes.gpu_memory_mb() if gpus else None)
        plan = processes.training_workers(gpus, cpu_queue=settings.train_queue, slots=slots)
    sys.exit(supervise.supervise([_supervised(p) for p in plan]))


def _supervised(process: processes.WorkerProcess) -> supervise.Supervised:
    return supervise.Supervised(process.name, partial(processes.spawn, process))


def _serve(args: argparse.Namespace) -> None:
    """Embedded mode: migrate, one worker (training + reconciler), the API in this process."""
    settings = get_settings()
    _migrate(argparse.Namespace(downgrade=None, revision="heads"))
    first = keys.ensure_first_key(settings)
    slots = processes.Slots.of_host(settings, gpus=0).cpu  # the job slots of this machine, one process each
    worker = processes.WorkerProcess(
        processes.celery_worker_argv([*training_queues(settings.train_queue), CONTROL_QUEUE], "embedded",
                                     beat=True, concurrency=slots),
    )
    children = [_supervised(worker), _supervised(processes.webhook_worker(settings.webhook_queue))]
    # Workers that die are restarted; they stop by themselves if this process dies (cli/processes.py).
    stopping = threading.Event()
    watcher = threading.Thread(target=supervise.watch, args=(children, stopping), name="supervise", daemon=True)
    print(SAMPLE.format(host=args.host, port=args.port, key_file=keys.key_file(settings)), flush=True)
    if first is not None:
        print(f"Your first API key (tenant {settings.anonymous_tenant!r}), also saved in {keys.key_file(settings)}:\n"
              f"  {first}\nSend it as: -H 'Authorization: Bearer {first}'\n", flush=True)
    else:
        print(f"API keys: `trainyard keys list`; the first one is in {keys.key_file(settings)}\n", flush=True)

    def exit_cleanly(signum: int, _frame: object) -> None:
        # uvicorn shuts down gracefully on SIGTERM, restores this handler and re-raises
        # the signal: turning it into SystemExit lets the finally below stop the workers.
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, exit_cleanly)
    watcher.start()
    try:
        _api(args)
    finally:
        stopping.set()
        watcher.join()
        # A warm shutdown: a training worker hands its job back within the stop grace.
        supervise.stop_all(children, timeout_s=settings.stop_grace_s + 30)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="trainyard", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    port = int(os.environ.get("PORT", "8000"))
    for name, helptext in (("serve", "embedded mode: migrate, start a worker and the API"),
                           ("api", "the HTTP API only")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        p.add_argument("--port", type=int, default=port)
    w = sub.add_parser("worker", help="training workers: job slots per GPU, else slots on the CPU queue")
    w.add_argument("--gpus", default="auto", help="'auto' (ask nvidia-smi) or a count")
    w.add_argument("--control", action="store_true",
                   help="run the reconciler (beat + control queue) and the webhook deliveries instead")
    m = sub.add_parser("migrate", help="apply database migrations")
    m.add_argument("--revision", default="heads")
    m.add_argument("--downgrade", metavar="REVISION", help="downgrade to REVISION instead (e.g. base)")
    client.add_commands(sub)
    sweeps.add_commands(sub)
    tensorboard.add_commands(sub)
    keys.add_commands(sub)
    args = parser.parse_args(argv)
    if hasattr(args, "client_command"):
        sys.exit(client.run(args))
    if hasattr(args, "keys_command"):
        sys.exit(args.keys_command(args))
    {"serve": _serve, "api": _api, "worker": _worker, "migrate": _migrate}[args.command](args)


if __name__ == "__main__":
    main()
