"""The metrics synced over 2 CPU processes (gloo) equal the single-process value: uneven shards, a rank that
saw no samples, NaN (skipped ROUGE) entries and the summed sacreBLEU statistics."""

import json
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from helpers.metric_pairs import PAIRS
from pedgpt.metrics.generation import ChineseGenerationMetrics, ChineseROUGE

pytestmark = pytest.mark.distributed

WORLD = 2
EXTRA = [("", PAIRS[0][1])]  # an empty prediction: NaN ROUGE under skip_rouge


def _shards(rank):
    """Rank 0 gets 7 pairs, rank 1 the other 4 (incl. the empty prediction)."""
    pairs = PAIRS + EXTRA
    return pairs[:7] if rank == 0 else pairs[7:]


def _metrics():
    return {
        "all": ChineseGenerationMetrics(sacrebleu=True),
        "skip": ChineseROUGE(empty="skip_rouge"),
        "lonely": ChineseGenerationMetrics(tokenizer="char"),
    }


def _values(metric):
    return {k: float(v) for k, v in metric.compute().items()}


def _worker(rank, port, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        metrics = _metrics()
        preds, refs = [p for p, _ in _shards(rank)], [r for _, r in _shards(rank)]
        metrics["all"].update(preds, refs)
        metrics["skip"].update(preds, refs)
        if rank == 0:  # rank 1 never updates this one
            metrics["lonely"].update([p for p, _ in PAIRS], [r for _, r in PAIRS])
        result = {name: _values(m) for name, m in metrics.items()}
        with metrics["all"].sync_context():  # per_sample() is local unless synced
            result["n"] = int(metrics["all"].per_sample().shape[0])
        result["n_local"] = int(metrics["all"].per_sample().shape[0])
        with open(f"{out_dir}/rank{rank}.json", "w") as f:
            json.dump(result, f)
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_synced_metrics_equal_single_process(tmp_path):
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    single = _metrics()
    pairs = PAIRS + EXTRA
    single["all"].update([p for p, _ in pairs], [r for _, r in pairs])
    single["skip"].update([p for p, _ in pairs], [r for _, r in pairs])
    single["lonely"].update([p for p, _ in PAIRS], [r for _, r in PAIRS])
    want = {name: _values(m) for name, m in single.items()}
    assert set(want["all"]) >= {"rougeL", "sacrebleu"}
    for rank in range(WORLD):
        got = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert got["n"] == len(pairs) and got["n_local"] == len(_shards(rank))
        for name in want:
            assert set(got[name]) == set(want[name])
            for k, v in want[name].items():
                assert got[name][k] == pytest.approx(v, abs=1e-9), (rank, name, k)
