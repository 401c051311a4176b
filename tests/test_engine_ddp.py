"""d2lcv.engine.fit under torchrun: 2 CPU processes (gloo) behave like one process with twice the batch."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("engine_ddp_worker.py")
PER_RANK_BATCH = 8


def load_worker():
    spec = importlib.util.spec_from_file_location("engine_ddp_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(WORKER), str(out), f"--batch-size={PER_RANK_BATCH}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "D2LCV_DEVICE": "cpu"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def load(path: Path) -> dict:
    return torch.load(path, weights_only=True)


@pytest.mark.slow
class TestDDP:
    def test_ranks_end_with_identical_parameters(self, ddp_run):
        r0, r1 = load(ddp_run / "rank0.pt"), load(ddp_run / "rank1.pt")
        assert r0["params"].keys() == r1["params"].keys()
        for k in r0["params"]:
            assert torch.equal(r0["params"][k], r1["params"][k]), k

    def test_metrics_are_global(self, ddp_run):
        worker = load_worker()
        r0, r1 = load(ddp_run / "rank0.pt"), load(ddp_run / "rank1.pt")
        def without_time(history):
            return [{k: v for k, v in record.items() if k != "time"} for record in history]

        assert len(r0["history"]) == 2
        assert without_time(r0["history"]) == without_time(r1["history"])  # all-reduced: identical
        # n is the whole dataset: the accuracy is a multiple of 1 / N, not of 1 / (N / 2)
        for record in r0["history"]:
            for key in ("train_acc", "val_acc"):
                correct = record[key] * worker.N
                assert correct == pytest.approx(round(correct), abs=1e-9)

    def test_checkpoint_written_once_by_rank0(self, ddp_run):
        assert sorted(p.name for p in ddp_run.iterdir()) == ["ckpt.pt", "rank0.pt", "rank1.pt"]
        state = load(ddp_run / "ckpt.pt")
        assert state["epoch"] == 2
        params = load(ddp_run / "rank0.pt")["params"]
        for k, v in state["model"].items():  # saved unwrapped: no "module." prefix
            assert torch.equal(v, params[k])

    def test_equals_single_process_with_global_batch(self, ddp_run, tmp_path):
        # DistributedSampler: rank r takes positions r, r + 2, ... of the same seeded
        # permutation, so the two ranks' batch k is the single process's batch k of 16,
        # and DDP's averaged gradient is the gradient of the mean loss over those 16.
        worker = load_worker()
        worker.train(tmp_path, batch_size=2 * PER_RANK_BATCH)
        single, ddp = load(tmp_path / "rank0.pt"), load(ddp_run / "rank0.pt")
        for k in single["params"]:
            torch.testing.assert_close(ddp["params"][k], single["params"][k], rtol=1e-5, atol=1e-6)
        for a, b in zip(single["history"], ddp["history"]):
            for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
                assert a[key] == pytest.approx(b[key], rel=1e-5), key
