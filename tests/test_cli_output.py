"""What the terminal client prints, without a server: full ids, no wrapping in a pipe, refused specs' fixes,
a line while the first epoch runs."""

import argparse
import io

import httpx
from rich.console import Console

from cli.client import api_message, jobs, output_console
from cli.progress import JobView

# Sortable ids made in the same second share their first 13 characters.
IDS = ["job_0006614f9a2b3c4d1e2f3a4b", "job_0006614f9a2b3c4d9f8e7d6c"]


def page(request: httpx.Request) -> httpx.Response:
    items = [{"id": i, "name": "a rather long experiment name " * 2, "status": "succeeded",
              "progress": {"epoch": 3, "epochs": 3}, "best_metrics": {"val_loss": 0.123456},
              "timings": {"created_at": "2026-11-28T11:00:00Z"}} for i in IDS]
    return httpx.Response(200, json={"items": items, "next_cursor": None})


def listed(console: Console) -> str:
    args = argparse.Namespace(limit=20, status=None, name=None)
    with httpx.Client(base_url="http://t", transport=httpx.MockTransport(page)) as client:
        assert jobs(client, args, console) == 0
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_jobs_never_cuts_an_id_in_a_narrow_terminal_or_a_pipe():
    terminal = listed(Console(file=io.StringIO(), width=80, force_terminal=True, color_system=None))
    piped = listed(output_console(io.StringIO()))
    for out in (terminal, piped):
        assert all(job_id in out for job_id in IDS), out
    assert max(len(line) for line in terminal.splitlines()) <= 80
    assert len(piped.splitlines()) == 3  # the header and one line per job: nothing wrapped


def test_epoch_lines_are_not_wrapped_in_a_pipe_and_the_first_epoch_is_announced():
    console = output_console(io.StringIO())
    view = JobView(console)
    view.show({"type": "job.started", "data": {"epoch": 0, "epochs": 20, "attempt": 1}})
    metrics = {f"val_metric_number_{i}": 0.5 for i in range(8)}
    view.show({"type": "job.epoch", "data": {"epoch": 1, "epochs": 20, "metrics": metrics, "duration_s": 3.25}})
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert lines[1] == "epoch 1/20 running…"
    assert lines[2].startswith("epoch 1/20  val_metric_number_0") and lines[2].endswith("(3.25 s)") and len(lines) == 3


def test_a_refused_specs_suggestions_are_in_the_message():
    finding = {"code": "loss_target_mismatch", "suggestions": [{"summary": "use binary_crossentropy",
                                                                "patch": {"compile": {"loss": "binary_crossentropy"}}}]}
    body = {"error": {"message": "preflight found 1 error(s): ...", "details": [
        {"path": "preflight.loss_target_mismatch", "message": "...", "finding": finding}]}}
    message = api_message(httpx.Response(422, json=body))
    fix = '  try: use binary_crossentropy  (the spec merge patch: {"compile":{"loss":"binary_crossentropy"}})'
    assert fix in message.splitlines()
