"""``trainyard submit | follow | jobs | curves``: the terminal client of the HTTP API (sweeps: cli/sweeps.py).

The base URL comes from ``--url`` or ``TRAINYARD_URL`` (default
http://127.0.0.1:8000), the API key from ``--api-key``, ``TRAINYARD_API_KEY``
or the file ``trainyard serve`` wrote. Exit status: 0 the job succeeded (or the command
worked), 1 the job failed, 3 it was cancelled, 2 the API refused the request
or could not be reached, 130 interrupted (the job goes on).
"""

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import httpx
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli import sse
from cli.progress import JobView, number

DEFAULT_URL = "http://127.0.0.1:8000"
PIPE_WIDTH = 10_000  # a table in a pipe is as wide as its content (up to this)
EXIT_FAILED, EXIT_CLIENT, EXIT_CANCELLED, EXIT_INTERRUPTED = 1, 2, 3, 130
Command = Callable[[httpx.Client, argparse.Namespace, Console], int]


class ClientError(Exception):
    """A request the API refused, or input the client cannot send; the message is for the user."""


def api_key(explicit: str | None) -> str | None:
    """--api-key, else $TRAINYARD_API_KEY, else the key `trainyard serve` saved in <data dir>/api-key."""
    if explicit:
        return explicit
    if os.environ.get("TRAINYARD_API_KEY"):
        return os.environ["TRAINYARD_API_KEY"]
    saved = Path(os.environ.get("TRAINYARD_DATA_DIR", "var")) / "api-key"
    return saved.read_text().strip() if saved.is_file() else None


@contextmanager
def open_client(url: str, key: str | None = None) -> Iterator[httpx.Client]:
    headers = {"User-Agent": "trainyard-cli/1.0", **({"Authorization": f"Bearer {key}"} if key else {})}
    with httpx.Client(base_url=url, timeout=30.0, headers=headers) as client:
        yield client


def output_console(stream: TextIO) -> Console:
    """A terminal's width in a terminal; in a pipe or a log no wrapping at all (a wrapped epoch line
    would put its duration on a line of its own, and cut table cells break scripts)."""
    if stream.isatty():
        return Console(file=stream)
    return Console(file=stream, soft_wrap=True, width=PIPE_WIDTH)


def api_message(response: httpx.Response) -> str:
    """The API's error, with the path of each detail: ``fit.n_epoch: unknown field ...``."""
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:500]}"
    lines = [f"{error['message']} (HTTP {response.status_code})"]
    details = error.get("details", [])
    if len(details) > 1:  # one is already in the message
        lines += [f"  {d['path'] or '(request)'}: {d['message']}" for d in details]
    for d in details:  # a refused spec's preflight findings carry their fixes: show them, as a followed job's are
        for suggestion in (d.get("finding") or {}).get("suggestions") or []:
            lines.append(f"  try: {suggestion.get('summary', '')}  (the spec merge patch: "
                         f"{json.dumps(suggestion.get('patch'), separators=(',', ':'))})")
    return "\n".join(lines)


def checked(response: httpx.Response) -> Any:
    """The JSON body of a response, or ClientError with the API's message."""
    if response.status_code >= 400:
        raise ClientError(api_message(response))
    return response.json()


def read_json(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
        return json.loads(text)
    except OSError as exc:
        raise ClientError(f"cannot read {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise ClientError(f"{path} is not valid JSON: {exc}") from exc


def submit(client: httpx.Client, args: argparse.Namespace, console: Console) -> int:
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else {}
    job = checked(client.post("/v1/jobs", json=read_json(args.spec), headers=headers))
    name = f" ({escape(job['name'])})" if job.get("name") else ""
    console.print(f"submitted [bold]{job['id']}[/]{name}")
    if args.follow:
        return follow_job(client, job["id"], console)  # the stream replays the preflight findings
    view = JobView(console)
    for finding in job.get("findings", []):
        view.finding(finding)
    console.print(f"follow it with: trainyard follow {job['id']}")
    return 0


def follow_job(client: httpx.Client, job_id: str, console: Console) -> int:
    final: dict[str, Any] | None = None
    with JobView(console) as view:
        try:
            for event in sse.follow(client, job_id):
                view.show(event)
                final = event
        except sse.StreamError as exc:
            raise ClientError(api_message(exc.response)) from exc
        except KeyboardInterrupt:
            console.print(f"stopped following; the job goes on. Again: trainyard follow {job_id}")
            return EXIT_INTERRUPTED
    status = final["data"]["status"] if final else "unknown"
    return {"succeeded": 0, "cancelled": EXIT_CANCELLED}.get(status, EXIT_FAILED)


def follow(client: httpx.Client, args: argparse.Namespace, console: Console) -> int:
    return follow_job(client, args.job_id, console)


def jobs(client: httpx.Client, args: argparse.Namespace, console: Console) -> int:
    params = {k: v for k, v in (("limit", args.limit), ("status", args.status), ("name", args.name)) if v}
    page = checked(client.get("/v1/jobs", params=params))
    table = Table(box=None, header_style="bold")
    # Ids are never cut: sortable ids share their first digits, so a cut one names no job (and would
    # collide with its neighbours); the name column gives way instead.
    table.add_column("id", no_wrap=True, min_width=max((len(job["id"]) for job in page["items"]), default=2))
    table.add_column("name", overflow="ellipsis")
    for column in ("status", "epoch", "best", "created"):
        table.add_column(column)
    for job in page["items"]:
        best = job.get("best_metrics") or {}
        monitor = "val_loss" if "val_loss" in best else "loss"
        table.add_row(job["id"], escape(job.get("name") or ""), job["status"],
                      f"{job['progress']['epoch']}/{job['progress']['epochs']}",
                      f"{monitor} {number(best[monitor])}" if monitor in best else "",
                      job["timings"]["created_at"][:19].replace("T", " "))
    console.print(table)
    if page.get("next_cursor"):
        console.print(f"(more: --limit {args.limit * 2})")
    return 0


def curves(client: httpx.Client, args: argparse.Namespace, console: Console) -> int:
    if args.csv:
        response = client.get(f"/v1/jobs/{args.job_id}/curves.csv")
        if response.status_code >= 400:
            raise ClientError(api_message(response))
        sys.stdout.write(response.text)
        return 0
    columns = checked(client.get(f"/v1/jobs/{args.job_id}/curves"))
    table = Table(*columns, box=None, header_style="bold")
    for row in zip(*columns.values(), strict=True):
        table.add_row(*(number(value) for value in row))
    console.print(table)
    return 0


def add_commands(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    s = sub.add_parser("submit", help="submit a job spec (a JSON file, or - for stdin)")
    s.add_argument("spec")
    s.add_argument("--follow", "-f", action="store_true", help="show its epochs and findings live until it ends")
    s.add_argument("--idempotency-key", help="submitting again with the same key returns the same job")
    f = sub.add_parser("follow", help="show a job's epochs and findings live until it ends")
    f.add_argument("job_id")
    j = sub.add_parser("jobs", help="list jobs, newest first")
    j.add_argument("--status", choices=["queued", "running", "succeeded", "failed", "cancelled"])
    j.add_argument("--name")
    j.add_argument("--limit", type=int, default=20)
    c = sub.add_parser("curves", help="a job's per-epoch metrics")
    c.add_argument("job_id")
    c.add_argument("--csv", action="store_true", help="print CSV (for a spreadsheet or a plot script)")
    for parser, command in ((s, submit), (f, follow), (j, jobs), (c, curves)):
        connects(parser, command)


def connects(parser: argparse.ArgumentParser, command: Command) -> None:
    """A client command: its --url and --api-key, and the function ``run`` calls."""
    parser.add_argument("--url", default=os.environ.get("TRAINYARD_URL", DEFAULT_URL),
                        help="the API (default: $TRAINYARD_URL or %(default)s)")
    parser.add_argument("--api-key", help="default: $TRAINYARD_API_KEY, else the key in <data dir>/api-key")
    parser.set_defaults(client_command=command)


def run(args: argparse.Namespace) -> int:
    console, errors = output_console(sys.stdout), output_console(sys.stderr)
    try:
        with open_client(args.url, api_key(args.api_key)) as client:
            return int(args.client_command(client, args, console))
    except ClientError as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}")
    except (httpx.TransportError, ConnectionError) as exc:
        errors.print(f"[red]error:[/] cannot reach the Trainyard API at {args.url} ({exc}); "
                     "set --url or TRAINYARD_URL")
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return EXIT_CLIENT
