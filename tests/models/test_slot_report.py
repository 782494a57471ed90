"""Slot reports: what a worker writes is what /metrics reads; a dead worker's report is skipped, then forgotten."""

import os

from datastore.artifacts import ArtifactStore
from models.slot_report import FORGET_AFTER_S, SlotReport, read_reports, write_report


def test_fresh_reports_are_read_stale_ones_skipped_and_forgotten_after_a_day(tmp_path):
    store = ArtifactStore(tmp_path)
    now = 1_000_000.0
    fresh = SlotReport("cpu@host-a", "cpu", slots=4, busy=3, at=now - 1)
    write_report(store.worker_report_path(fresh.worker), fresh)
    write_report(store.worker_report_path("gpu0@host-b"), SlotReport("gpu0@host-b", "gpu", 2, 2, at=now - 60))
    gone = store.worker_report_path("cpu@host-c")
    write_report(gone, SlotReport("cpu@host-c", "cpu", 1, 0, at=now - FORGET_AFTER_S - 1))
    (store.worker_reports_dir() / "junk.json").write_text("{not json")

    assert list(read_reports(store.worker_reports_dir(), stale_after_s=15, now=now)) == [fresh]
    assert fresh.free == 1 and SlotReport("w", "cpu", 1, 3, now).free == 0  # a control task on top: none free
    assert not gone.exists() and store.worker_report_path("gpu0@host-b").exists()  # a day stale: removed
    assert not [name for name in os.listdir(store.worker_reports_dir()) if name.endswith(".part")]


def test_a_node_name_is_a_file_name_inside_the_store(tmp_path):
    store = ArtifactStore(tmp_path)
    path = store.worker_report_path("../../etc/cpu@host")
    assert path.parent == store.worker_reports_dir() and path.name == ".._.._etc_cpu@host.json"
    assert list(read_reports(tmp_path / "absent", stale_after_s=15)) == []
