"""The trainyard command: one worker process per GPU, the CPU queue elsewhere."""

import pytest

from cli import main as cli_main
from cli.processes import control_plane, control_worker, training_workers


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
