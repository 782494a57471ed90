import re
from collections.abc import Sequence
from dataclasses import dataclass

Loc = tuple[str | int, ...]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_CALL_PREFIX = re.compile(r"^Exception encountered when calling [\w.]+\(\)\.\s*")


@dataclass(frozen=True)
class SpecIssue:
    """One problem with a spec, at a JSON path such as ``("model", "layers", 2, "units")``."""

    loc: Loc
    message: str


class SpecError(Exception):
    def __init__(self, issues: Sequence[SpecIssue]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, i.loc))}: {i.message}" for i in issues))
        self.issues = list(issues)


def keras_message(exc: BaseException, limit: int = 400) -> str:
    """Keras's own message, without the traceback noise it appends to call errors."""
    text = _ANSI.sub("", str(exc)).strip() or type(exc).__name__
    first = text.split("\n\nArguments received by", 1)[0]
    first = _CALL_PREFIX.sub("", first)
    first = " ".join(first.split())
    return first if len(first) <= limit else first[: limit - 1] + "…"
