"""Static checks of Dockerfile and docker-compose.yml against the real CLI and settings (no Docker engine)."""

import argparse
import json
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from unittest import mock

import pytest
import yaml

from cli import main as cli_main
from cli.processes import control_plane, training_workers
from models.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
PROJECT = {name: svc for name, svc in SERVICES.items() if "build" in svc}  # services running our image
DOCKERFILE = (ROOT / "Dockerfile").read_text()

# What each service must run, as the real parser reads it (a subset of its Namespace).
EXPECTED = {
    "migrate": {"command": "migrate"},
    "api": {"command": "api", "host": "0.0.0.0", "port": 8000},
    "worker-gpu": {"command": "worker", "gpus": "auto", "control": False},
    "worker-cpu": {"command": "worker", "gpus": "0", "control": False},
    "control": {"command": "worker", "control": True},
}


class _Parsed(Exception):
    pass


def cli_parse(argv: list[str]) -> argparse.Namespace:
    """Parse ``trainyard ARGV`` with the parser ``cli.main.main`` builds, stopping before it runs anything."""
    assert argv[0] == "trainyard", f"{argv} does not run the trainyard command"
    real = argparse.ArgumentParser.parse_args

    def parse_and_stop(self, *args, **kwargs):
        raise _Parsed(real(self, *args, **kwargs))

    with mock.patch.object(argparse.ArgumentParser, "parse_args", parse_and_stop), pytest.raises(_Parsed) as parsed:
        try:
            cli_main.main(argv[1:])
        except SystemExit as exc:
            pytest.fail(f"the CLI rejects {shlex.join(argv)} (exit {exc.code})")
    return parsed.value.args[0]


def command(svc: dict) -> list[str]:
    cmd = svc["command"]
    return shlex.split(cmd) if isinstance(cmd, str) else cmd


def environment(svc: dict) -> dict[str, str]:
    env = svc.get("environment") or {}
    return dict(item.split("=", 1) for item in env) if isinstance(env, list) else {k: str(v) for k, v in env.items()}


def test_required_services_exist():
    assert {"postgres", "redis", *EXPECTED} <= SERVICES.keys() and set(PROJECT) == set(EXPECTED)


def test_cli_helper_rejects_unknown_flags():
    with pytest.raises(pytest.fail.Exception):
        cli_parse(["trainyard", "worker", "--no-such-flag"])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_service_runs_a_real_trainyard_subcommand(name):
    args = vars(cli_parse(command(SERVICES[name])))
    assert {k: args.get(k) for k in EXPECTED[name]} == EXPECTED[name]


def test_env_vars_are_settings_fields():
    for name, svc in PROJECT.items():
        fields = {}
        for key, value in environment(svc).items():
            assert key.startswith("TRAINYARD_"), f"{name}: {key} is not a TRAINYARD_ variable"
            field = key.removeprefix("TRAINYARD_").lower()
            assert field in Settings.model_fields, f"{name}: {key} matches no field of Settings"
            fields[field] = value
        Settings(**fields)  # the values validate too


def test_every_training_queue_sent_to_is_consumed():
    queue = {name: environment(svc)["TRAINYARD_TRAIN_QUEUE"] for name, svc in PROJECT.items()}
    assert (queue["api"], queue["worker-cpu"]) == ("gpu", "cpu")
    consumed = set()
    for name in ("worker-gpu", "worker-cpu"):  # the queues the real process plan gives each worker
        gpus = cli_parse(command(SERVICES[name])).gpus
        for proc in training_workers(1 if gpus == "auto" else int(gpus), cpu_queue=queue[name]):
            consumed.update(proc.argv[proc.argv.index("-Q") + 1].split(","))
    assert {queue["api"], queue["control"]} <= consumed  # the API and the reconciler send training jobs


def test_webhook_deliveries_are_consumed_by_the_control_service():
    def settings_of(svc: dict) -> Settings:
        return Settings(**{k.removeprefix("TRAINYARD_").lower(): v for k, v in environment(svc).items()})

    assert cli_parse(command(SERVICES["control"])).control
    consumed = {p.argv[p.argv.index("-Q") + 1] for p in control_plane(settings_of(SERVICES["control"]).webhook_queue)}
    assert {settings_of(svc).webhook_queue for svc in PROJECT.values()} <= consumed  # the API and workers send them


def test_gpu_worker_reserves_nvidia_gpus_and_uses_the_gpu_build():
    gpu = SERVICES["worker-gpu"]
    reserved = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]} in reserved
    assert gpu["build"]["args"]["TF_VARIANT"] == "gpu"
    assert all(svc["build"]["args"]["TF_VARIANT"] == "cpu" for name, svc in PROJECT.items() if name != "worker-gpu")


def test_api_and_workers_share_the_artifacts_volume():
    assert "artifacts" in COMPOSE["volumes"]
    for name in ("api", "worker-gpu", "worker-cpu", "control"):
        mounts = {v.split(":")[0]: v.split(":")[1] for v in SERVICES[name].get("volumes", [])}
        assert mounts.get("artifacts") == environment(SERVICES[name])["TRAINYARD_ARTIFACT_ROOT"] == "/artifacts", name


def test_start_order():
    assert SERVICES["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert SERVICES["api"]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"},
                                             "redis": {"condition": "service_healthy"}}
    assert "/healthz" in " ".join(SERVICES["api"]["healthcheck"]["test"])
    assert "healthcheck" in SERVICES["postgres"] and "healthcheck" in SERVICES["redis"]


V2 = shutil.which("docker") and not subprocess.run(["docker", "compose", "version"], capture_output=True).returncode


@pytest.mark.parametrize("compose", [
    pytest.param(["docker-compose"], id="v1", marks=pytest.mark.skipif(
        not shutil.which("docker-compose"), reason="no docker-compose (v1): apt-get install docker-compose")),
    pytest.param(["docker", "compose"], id="v2", marks=pytest.mark.skipif(
        not V2, reason="the Docker Compose v2 plugin (`docker compose`) is not installed")),
])
def test_compose_config_is_valid(compose):
    done = subprocess.run([*compose, "-f", "docker-compose.yml", "config", "-q"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_dockerfile():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    default = re.search(r"^ARG TF_VARIANT=(\w+)$", DOCKERFILE, re.M)
    assert default and default.group(1) == "cpu" and {"cpu", "gpu"} <= extras.keys()
    assert re.search(r"pip install [^\n]*\.\[\$\{?TF_VARIANT\}?\]", DOCKERFILE)
    assert re.search(r"^FROM python:3\.11-slim", DOCKERFILE, re.M) and re.search(r"^EXPOSE 8000$", DOCKERFILE, re.M)
    assert re.search(r"^USER (?!root\b|0\b)\S+", DOCKERFILE, re.M), "the image must run as a non-root user"
    args = vars(cli_parse(json.loads(re.findall(r"^(?:CMD|ENTRYPOINT) (.+)$", DOCKERFILE, re.M)[-1])))
    assert {k: args[k] for k in EXPECTED["api"]} == EXPECTED["api"]


def test_workers_are_given_longer_to_stop_than_their_jobs_take_to_hand_back():
    def seconds(period: str) -> float:
        return float(period.removesuffix("s"))

    for name in ("worker-gpu", "worker-cpu"):
        grace = Settings(**{k.removeprefix("TRAINYARD_").lower(): v for k, v in environment(SERVICES[name]).items()})
        assert seconds(SERVICES[name]["stop_grace_period"]) >= grace.stop_grace_s + 10, name
        assert SERVICES[name]["restart"] == "unless-stopped" and SERVICES[name]["init"] is True
