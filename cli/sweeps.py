"""``trainyard sweep spec.json space.json [--follow]`` and ``trainyard sweeps``: sweeps from the terminal.

``space.json`` holds the search space (``{"fit.batch_size": {"choice": [16, 32]}, ...}``), or a whole
sweep request without its spec (``{"space": {...}, "sampler": "grid", ...}``); the options override it.
``--follow`` reads the sweep's event stream and prints each trial as it starts and ends, and each new
best, then the ranked table. Exit status as for a job: 0 succeeded, 1 failed, 3 cancelled, 2 refused.
"""

import argparse
from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli import sse
from cli.client import (
    EXIT_CANCELLED,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    ClientError,
    api_message,
    checked,
    connects,
    read_json,
)
from cli.progress import number

OPTIONS = ("sampler", "max_trials", "parallelism", "name")


def request_body(args: argparse.Namespace) -> dict[str, Any]:
    space = read_json(args.space)
    body = dict(space) if isinstance(space, dict) and "space" in space else {"space": space}
    body["spec"] = read_json(args.spec)
    for option in OPTIONS:
        if getattr(args, option) is not None:
            body[option] = getattr(args, option)
    if args.metric or args.direction:
        body["objective"] = {**body.get("objective", {}), **({"metric": args.metric} if args.metric else {}),
                             **({"direction": args.direction} if args.direction else {})}
    if args.pruner:
        body["pruning"] = {**body.get("pruning", {}), "pruner": args.pruner}
    return body


def sweep(client: httpx.Client, args: argparse.Namespace, console: Console) -> int:
    created = checked(client.post("/v1/sweeps", json=request_body(args)))
    console.print(f"sweep [bold]{created['id']}[/]: {created['trials_planned']} trials ({created['sampler']}), "
                  f"{created['parallelism']} at a time, {created['objective']['direction']} "
                  f"{created['objective']['metric']}")
    if not args.follow:
        console.print(f"follow it with: trainyard sweeps {created['id']}")
        return 0
    return follow_sweep(client, created["id"], console)


SWEEP_END = ("sweep.succeeded", "sweep.failed", "sweep.cancelled")


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{path}={number(value)}" for path, value in params.items())


def _event_line(event: dict[str, Any]) -> str | None:
    data, kind = event["data"], event["type"]
    if kind == "trial.started":
        return f"trial {data['number']} started [{_params(data['params'])}]: job {data['job_id']}"
    if kind in ("trial.finished", "trial.pruned"):
        why = f" by {data['stopped_by']}" if data.get("stopped_by") else ""
        reason = f" ({data['stop_reason']}{why})" if data.get("stop_reason") not in (None, "completed") else ""
        epoch = f" at epoch {data['best_epoch']}" if data.get("best_epoch") else ""
        return f"trial {data['number']}: {data['state']}{reason}, objective {number(data['objective'])}{epoch}"
    if kind == "sweep.best":
        return f"[bold green]new best[/]: trial {data['number']}, objective {number(data['objective'])}"
    return None


def follow_sweep(client: httpx.Client, sweep_id: str, console: Console) -> int:
    """The sweep's events as they come (its SSE stream, reconnecting as a job's), then the ranked table."""
    try:
        for event in sse.follow_stream(client, f"/v1/sweeps/{sweep_id}/events", SWEEP_END):
            if (line := _event_line(event)) is not None:
                console.print(line, highlight=False)
    except sse.StreamError as exc:
        raise ClientError(api_message(exc.response)) from exc
    except KeyboardInterrupt:
        console.print(f"stopped following; the sweep goes on. Again: trainyard sweeps {sweep_id}")
        return EXIT_INTERRUPTED
    current = checked(client.get(f"/v1/sweeps/{sweep_id}"))
    show_sweep(current, console)
    return {"succeeded": 0, "cancelled": EXIT_CANCELLED}.get(current["status"], EXIT_FAILED)


def show_sweep(current: dict[str, Any], console: Console) -> None:
    console.print(f"sweep {current['id']}: {current['status']}")
    table = Table(box=None, header_style="bold")
    for column in ("rank", "trial", *current["space"], "state", "objective", "best epoch", "stop", "job"):
        table.add_column(escape(column))
    ordered = sorted(current["trials"], key=lambda t: (t["rank"] is None, t["rank"] or 0, t["number"]))
    for trial in ordered:
        stop = (trial.get("stop_reason") or "") + (f" ({trial['stopped_by']})" if trial.get("stopped_by") else "")
        table.add_row(str(trial["rank"] or ""), str(trial["number"]),
                      *(number(trial["params"].get(path)) for path in current["space"]), trial["state"],
                      "" if trial["objective"] is None else number(trial["objective"]), str(trial["best_epoch"] or ""),
                      stop, trial["job_id"] or "")
    console.print(table)
    if current.get("importances"):
        console.print("importances: " + ", ".join(f"{k} {v:.2f}" for k, v in current["importances"].items()))
    saved = (current.get("pruning_saved_s") or {}).get("total")
    if saved:
        console.print(f"training time saved by stopping trials early: {saved:.1f} s")


def sweeps(client: httpx.Client, args: argparse.Namespace, console: Console) -> int:
    if args.sweep_id:
        show_sweep(checked(client.get(f"/v1/sweeps/{args.sweep_id}")), console)
        return 0
    page = checked(client.get("/v1/sweeps", params={"limit": args.limit}))
    table = Table(box=None, header_style="bold")
    for column in ("id", "name", "status", "sampler", "trials", "objective", "created"):
        table.add_column(column, no_wrap=column == "id")
    for item in page["items"]:
        table.add_row(item["id"], escape(item.get("name") or ""), item["status"], item["sampler"],
                      str(item["trials_planned"]), f"{item['objective']['direction']} {item['objective']['metric']}",
                      item["created_at"][:19].replace("T", " "))
    console.print(table)
    return 0


def add_commands(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    s = sub.add_parser("sweep", help="start a hyperparameter sweep: a job spec and a search space (JSON files)")
    s.add_argument("spec")
    s.add_argument("space", help='{"path": {"choice"|"uniform"|"loguniform"|"int": ...}}, or a sweep request '
                                 "without its spec")
    s.add_argument("--sampler", choices=["grid", "random", "tpe"])
    s.add_argument("--max-trials", dest="max_trials", type=int)
    s.add_argument("--parallelism", type=int)
    s.add_argument("--name")
    s.add_argument("--metric", help="the objective's metric (default val_loss)")
    s.add_argument("--direction", choices=["minimize", "maximize"])
    s.add_argument("--pruner", choices=["median", "successive_halving", "none"])
    s.add_argument("--follow", "-f", action="store_true", help="show the trials as they start and end")
    ls = sub.add_parser("sweeps", help="list sweeps, or show one (its ranked trials)")
    ls.add_argument("sweep_id", nargs="?")
    ls.add_argument("--limit", type=int, default=20)
    connects(s, sweep)
    connects(ls, sweeps)
