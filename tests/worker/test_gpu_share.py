"""A GPU slot takes its memory share before TensorFlow initialises the GPU (worker/warmup.py).

No GPU is lent to these tests: a stand-in for ``tf.config`` records what the slot asks for."""

from types import SimpleNamespace

from worker.warmup import share_gpus


class FakeConfig:
    def __init__(self, gpus: list[str]) -> None:
        self.gpus, self.growth, self.logical = gpus, [], {}
        self.experimental = SimpleNamespace(set_memory_growth=lambda gpu, on: self.growth.append((gpu, on)))
        self.LogicalDeviceConfiguration = lambda memory_limit: ("logical", memory_limit)

    def list_physical_devices(self, kind: str) -> list[str]:
        return self.gpus if kind == "GPU" else ["cpu0"]

    def set_logical_device_configuration(self, gpu: str, configs: list[tuple[str, int]]) -> None:
        self.logical[gpu] = configs


def test_a_slot_with_a_share_turns_each_visible_gpu_into_one_logical_device_of_that_size():
    config = FakeConfig(["gpu0", "gpu1"])
    share_gpus(SimpleNamespace(config=config), 6000)
    assert config.logical == {"gpu0": [("logical", 6000)], "gpu1": [("logical", 6000)]}
    assert config.growth == []


def test_a_slot_without_a_share_grows_its_memory_as_needed():
    config = FakeConfig(["gpu0"])
    share_gpus(SimpleNamespace(config=config), None)
    assert config.growth == [("gpu0", True)] and config.logical == {}
