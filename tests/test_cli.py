"""The trainyard command: one worker process per GPU, the CPU queue elsewhere."""

import pytest

from cli import main as cli_main
from cli.processes import control_worker, training_workers


def test_one_worker_process_per_gpu_each_seeing_only_its_gpu():
    plan = training_workers(3)
    assert [p.env["CUDA_VISIBLE_DEVICES"] for p in plan] == ["0", "1", "2"]
    for process in plan:
        argv = process.argv
        assert argv[argv.index("-Q") + 1] == "gpu"
        assert argv[argv.index("-c") + 1] == "1"


def test_a_cpu_host_runs_one_worker_on_the_cpu_queue_without_gpus():
    (process,) = training_workers(0, cpu_queue="cpu")
    assert process.argv[process.argv.index("-Q") + 1] == "cpu"
    assert process.env["CUDA_VISIBLE_DEVICES"] == ""


def test_control_worker_runs_beat_and_the_control_queue():
    argv = control_worker().argv
    assert "--beat" in argv and argv[argv.index("-Q") + 1] == "control"


@pytest.mark.parametrize("command", ["serve", "api", "worker", "migrate"])
def test_subcommands_exist(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main.main([command, "--help"])
    assert exit_info.value.code == 0
    assert command in capsys.readouterr().out
