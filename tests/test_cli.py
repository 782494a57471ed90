"""The trainyard command: one worker process per GPU, the CPU queue elsewhere."""

import os

import pytest

from cli import main as cli_main
from cli.processes import Slots, control_plane, control_worker, host_memory_bytes, training_workers
from models.settings import Settings


def test_one_worker_process_per_gpu_each_seeing_only_its_gpu():
    *plan, multi = training_workers(3, cpu_queue="cpu")
    assert [p.env["CUDA_VISIBLE_DEVICES"] for p in plan] == ["0", "1", "2"]
    assert multi.env["CUDA_VISIBLE_DEVICES"] == "0,1,2"  # for jobs that ask for several GPUs
    for process in plan:
        argv = process.argv
        assert argv[argv.index("-Q") + 1] == "gpu.resume,gpu"  # resumed jobs first
        assert argv[argv.index("-c") + 1] == "1"


def test_a_cpu_host_runs_one_worker_on_the_cpu_queue_without_gpus():
    (process,) = training_workers(0, cpu_queue="cpu")
    assert process.argv[process.argv.index("-Q") + 1] == "cpu.resume,cpu"
    assert process.env["CUDA_VISIBLE_DEVICES"] == ""


def test_control_worker_runs_beat_and_the_control_queue():
    argv = control_worker().argv
    assert "--beat" in argv and argv[argv.index("-Q") + 1] == "control"


def test_webhook_deliveries_run_beside_the_reconciler_on_threads_without_tensorflow():
    control, hooks = control_plane("hooks-q")
    assert control.argv == control_worker().argv
    argv = hooks.argv
    assert argv[argv.index("-Q") + 1] == "hooks-q"
    assert (argv[argv.index("--pool") + 1], argv[argv.index("-c") + 1]) == ("threads", "4")


@pytest.mark.parametrize("command", ["serve", "api", "worker", "migrate", "submit", "follow", "jobs", "curves"])
def test_subcommands_exist(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main.main([command, "--help"])
    assert exit_info.value.code == 0
    assert command in capsys.readouterr().out


def test_the_control_worker_never_imports_tensorflow():
    from cli.processes import NO_TENSORFLOW

    assert control_worker().env[NO_TENSORFLOW] == "1"


def test_keys_create_list_revoke(tmp_path, monkeypatch, capsys):
    from cli import keys
    from migrations import upgrade
    from models.settings import Settings

    settings = Settings(data_dir=tmp_path)
    upgrade(settings.database_dsn)
    monkeypatch.setattr(keys, "get_settings", lambda: settings)

    def trainyard(*argv: str) -> tuple[int, str]:
        with pytest.raises(SystemExit) as exit_info:
            cli_main.main(list(argv))
        captured = capsys.readouterr()
        return exit_info.value.code, captured.out + captured.err

    status, out = trainyard("keys", "create", "--tenant", "acme", "--name", "ci")
    assert status == 0
    key_id, key = out.split()[1], out.strip().splitlines()[-1]
    assert key.startswith("ty_")
    status, out = trainyard("keys", "list")
    assert key_id in out and "acme" in out and "active" in out and key not in out
    assert trainyard("keys", "revoke", key_id)[0] == 0
    assert "revoked" in trainyard("keys", "list", "--tenant", "acme")[1]
    assert trainyard("keys", "revoke", key_id)[0] == 2
    assert trainyard("keys", "create", "--tenant", "Not A Name")[0] == 2


def test_the_first_start_makes_one_key_and_saves_it_for_the_client(tmp_path, monkeypatch):
    from cli.client import api_key
    from cli.keys import ensure_first_key, key_file
    from migrations import upgrade
    from models.settings import Settings

    settings = Settings(data_dir=tmp_path)
    upgrade(settings.database_dsn)
    key = ensure_first_key(settings)
    assert key and key_file(settings).read_text().strip() == key
    assert oct(key_file(settings).stat().st_mode)[-3:] == "600"
    assert ensure_first_key(settings) is None  # only on the very first start
    monkeypatch.delenv("TRAINYARD_API_KEY", raising=False)
    monkeypatch.setenv("TRAINYARD_DATA_DIR", str(tmp_path))
    assert api_key(None) == key


def test_a_cpu_host_runs_its_slots_as_pool_children():
    (process,) = training_workers(0, cpu_queue="cpu", slots=Slots(cpu=2))
    assert process.argv[process.argv.index("-c") + 1] == "2"
    assert process.argv[process.argv.index("--pool") + 1] == "prefork"  # one process per slot


def test_cpu_slots_default_to_the_cores_and_never_overcommit_memory():
    settings = Settings(worker_memory_bytes=1024**3, worker_runtime_bytes=1024**3)
    assert Slots.of_host(settings, gpus=0).cpu == max(1, min(os.cpu_count() or 1, host_memory_bytes() // 2**31))
    assert Slots.of_host(Settings(cpu_slots=5), gpus=0).cpu == 5
    huge = Settings(worker_memory_bytes=host_memory_bytes(), worker_runtime_bytes=0)
    assert Slots.of_host(huge, gpus=0).cpu == 1


def test_gpu_slots_share_each_gpu_and_a_multi_gpu_host_adds_one_process_over_all_of_them():
    slots = Slots.of_host(Settings(gpu_slots=3), gpus=2, gpu_memory_mb=80_000)
    assert slots.slot_memory_mb == int(80_000 * 0.95) // 4  # 3 slots + the multi-GPU process per GPU
    plan = training_workers(2, cpu_queue="cpu", slots=slots)
    assert [p.env["CUDA_VISIBLE_DEVICES"] for p in plan] == ["0", "1", "0,1"]
    for process in plan:
        assert process.env["TRAINYARD_GPU_SLOT_MEMORY_MB"] == str(slots.slot_memory_mb)
    one = plan[0].argv
    assert one[one.index("-c") + 1] == "3"
    assert one[one.index("-Q") + 1].split(",")[-2:] == ["gpu.1g", "gpu"] and "gpu.16g" in one[one.index("-Q") + 1]
    multi = plan[2].argv[plan[2].argv.index("-Q") + 1].split(",")
    assert "gpu.x2" in multi and "gpu.x2.resume" in multi and "gpu" not in multi


def test_one_slot_per_gpu_keeps_memory_growth():
    slots = Slots.of_host(Settings(), gpus=1, gpu_memory_mb=80_000)
    (process,) = training_workers(1, cpu_queue="cpu", slots=slots)
    assert slots.slot_memory_mb is None and "TRAINYARD_GPU_SLOT_MEMORY_MB" not in process.env
    assert "gpu.64g" in process.argv[process.argv.index("-Q") + 1]  # the whole GPU's memory is offered
