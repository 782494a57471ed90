"""The README says what the code does: the error statuses, the auth header in its examples, the defaults."""

import re
from pathlib import Path

from api.schemas.errors import DESCRIPTIONS
from models.settings import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def shell_commands() -> list[str]:
    """Every command of the README's ``sh`` blocks, continuation lines joined."""
    blocks = re.findall(r"```sh\n(.*?)```", README, flags=re.DOTALL)
    return [command for block in blocks for command in block.replace("\\\n", " ").splitlines()]


def test_every_documented_error_status_is_in_the_readme_error_table():
    rows = set(re.findall(r"^\| (\d{3}) \| `\w+` \|", README, flags=re.MULTILINE))
    assert {str(status) for status in DESCRIPTIONS} <= rows


def test_every_curl_example_of_the_api_carries_the_api_key():
    calls = [c for c in shell_commands() if c.lstrip().startswith("curl") and "/v1/" in c]
    assert calls, "the README has no curl example of the API"
    assert [c for c in calls if 'Authorization: Bearer $TRAINYARD_API_KEY' not in c] == []


def test_the_embedded_defaults_in_the_readme_are_the_settings_defaults():
    defaults = Settings(data_dir=Path("var"))
    broker = defaults.broker_dsn.split("://", 1)[0]  # the transport; the path is made absolute at run time
    assert f"| `TRAINYARD_BROKER_URL` | `{broker}:///var/broker.db`" in README
    assert f"| `TRAINYARD_TRAIN_QUEUE` | `{defaults.train_queue}`" in README
