"""A followed job in the terminal: one line per epoch with all its metrics (as
Keras's ``verbose=2`` prints them, so the history stays on screen), a live bar
under them with the progress and the monitored loss, findings as they arrive.
Off a terminal (a pipe, a CI log) the bar is left out."""

from types import TracebackType
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
STATUS_STYLE = {"succeeded": "bold green", "failed": "bold red", "cancelled": "bold yellow"}


def number(value: Any) -> str:
    return "nan" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def metrics_text(metrics: dict[str, Any]) -> str:
    return "  ".join(f"{key} {number(value)}" for key, value in metrics.items())


class JobView:
    """Renders one job's events (the dicts of ``cli.sse.follow``)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def __enter__(self) -> "JobView":
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self.progress is not None:
            self.progress.stop()

    def show(self, event: dict[str, Any]) -> None:
        data, kind = event["data"], event["type"]
        if kind == "job.queued":
            again = " again (its worker was lost)" if data.get("requeued") else ""
            self.console.print(f"[bold]{data['job_id']}[/] queued{again}")
        elif kind == "job.started":
            self._started(data)
        elif kind == "job.epoch":
            self._epoch(data)
        elif kind == "job.finding":
            self.finding(data["finding"])
        else:
            self._finished(data)

    def _started(self, data: dict[str, Any]) -> None:
        attempt = data.get("attempt", 1)
        self.console.print(f"started{f' (attempt {attempt})' if attempt and attempt > 1 else ''}: "
                           f"{data['epochs']} epochs")
        if data["epoch"] < data["epochs"]:  # the first epoch can take a minute: say that it is under way
            self.console.print(f"epoch {data['epoch'] + 1}/{data['epochs']} running…", highlight=False)
        if not self.console.is_terminal:
            return
        if self.progress is None:
            self.progress = Progress(TextColumn("training"), BarColumn(bar_width=30), MofNCompleteColumn(),
                                     TimeElapsedColumn(), TextColumn("{task.fields[metrics]}"), console=self.console)
            self.progress.start()
            self.task = self.progress.add_task("train", total=data["epochs"], metrics="")
        self.progress.update(self.task, completed=data["epoch"])  # type: ignore[arg-type]

    def _epoch(self, data: dict[str, Any]) -> None:
        metrics = data.get("metrics") or {}
        seconds = data.get("duration_s")
        timing = f"  ({seconds:.2f} s)" if isinstance(seconds, float) else ""
        self.console.print(f"epoch {data['epoch']}/{data['epochs']}  {escape(metrics_text(metrics))}{timing}",
                           highlight=False)
        if self.progress is not None and self.task is not None:
            monitor = "val_loss" if "val_loss" in metrics else "loss"
            shown = f"{monitor} {number(metrics[monitor])}" if monitor in metrics else ""
            self.progress.update(self.task, completed=data["epoch"], metrics=shown)

    def finding(self, finding: dict[str, Any]) -> None:
        severity = finding.get("severity", "info")
        where = f" (epoch {finding['epoch']})" if finding.get("epoch") else ""
        self.console.print(f"[{SEVERITY_STYLE.get(severity, 'bold')}]{severity}[/] {finding.get('code')}{where}: "
                           f"{escape(str(finding.get('message', '')))}", highlight=False)
        for suggestion in finding.get("suggestions") or []:
            self.console.print(f"    try: {escape(str(suggestion.get('summary', '')))}", highlight=False)

    def _finished(self, data: dict[str, Any]) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        status = data["status"]
        self.console.print(f"[{STATUS_STYLE.get(status, 'bold')}]{status}[/] ({data.get('stop_reason')}) "
                           f"after {data['epoch']}/{data['epochs']} epochs", highlight=False)
        if data.get("test_metrics"):
            self.console.print(f"test: {escape(metrics_text(data['test_metrics']))}", highlight=False)
        if data.get("error"):
            self.console.print(f"[red]{escape(data['error'].get('type', 'error'))}[/]: "
                               f"{escape(str(data['error'].get('message', '')))}")
