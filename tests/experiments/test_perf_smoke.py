"""The performance suite at CI size: it runs end to end and emits its JSON keys (no timed assertions)."""

import importlib.util
import json
import os
import subprocess
import sys

import torch

from helpers import ROOT
from helpers.corpus import shared_data_dir

REPO = str(ROOT)
PERF = os.path.join(REPO, "experiments", "perf")
KEYS = {
    "sft_vs_trl",
    "dfpo_cached_vs_sft",
    "dfpo_online_vs_sft",
    "moe_vs_lora_r8",
    "moe_vs_lora_same_rank",
    "moe_vs_lora_r8_2048",
    "moe_vs_lora_same_rank_2048",
    "cpu_gemm_fraction_sft_1024",
    "packing_efficiency",
    "batched_generation_speedup",
    "block_attention_speedup_4096",
    "block_attention_speedup_2048",
    "start_rss_ratio_100x",
    "start_seconds_ratio_100x",
    "tokenize_speedup",
}
#: rows that need the shared data (``../shared/data`` or ``$PEDGPT_DATA_DIR``); null without it
SHARED = {"start_rss_ratio_100x", "start_seconds_ratio_100x", "tokenize_speedup"}


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"perf_{name}", os.path.join(PERF, f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_expected_mask_is_block_causal_with_padding_on_itself():
    # documents of 2 and 1 tokens, then one padding position
    want = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=torch.bool)
    assert torch.equal(_load("packing").expected_mask([2, 1], 4), want)


def test_verify_rows_rejects_a_mask_that_crosses_documents(monkeypatch):
    packing = _load("packing")
    rows = [[{"input_ids": [1, 5, 6], "labels": [-100, 5, 6]}, {"input_ids": [1, 7], "labels": [-100, 7]}]]
    assert packing.verify_rows(rows, max_len=8, pad_id=0) == 1

    def plain_causal(rows, max_len, pad_id):  # positions restart, but the mask is one causal block
        L = sum(len(e["input_ids"]) for e in rows[0])
        causal = torch.ones(L, L, dtype=torch.bool).tril()
        mask = torch.zeros(1, 1, L, L).masked_fill(~causal, torch.finfo(torch.float32).min)
        return {
            "input_ids": torch.zeros(1, L, dtype=torch.long),
            "attention_mask": mask,
            "position_ids": torch.tensor([[0, 1, 2, 0, 1]]),
        }

    monkeypatch.setattr(packing, "collate_packed", plain_causal)
    try:
        packing.verify_rows(rows, max_len=8, pad_id=0)
    except AssertionError as e:
        assert "attend to each other" in str(e)
    else:
        raise AssertionError("a mask letting documents attend to each other was accepted")


def test_suite_smoke_run_emits_all_keys(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "2", "PEDGPT_CACHE_DIR": str(tmp_path / "cache")}
    p = subprocess.run(
        [
            sys.executable,
            os.path.join(PERF, "run.py"),
            "--smoke",
            "--no-trl",
            "--threads",
            "2",
            "--out-dir",
            str(tmp_path),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    last = json.loads(p.stdout.strip().splitlines()[-1])
    assert set(last) == KEYS
    assert last["sft_vs_trl"] is None  # --no-trl: the TRL row is skipped
    for k in KEYS - {"sft_vs_trl"}:
        if k in SHARED and shared_data_dir() is None:
            assert last[k] is None, (k, last[k])
            continue
        assert isinstance(last[k], float) and last[k] > 0, (k, last[k])
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["mode"] == "smoke" and results["summary"] == last
    assert results["metrics"]["packing_efficiency"]["details"][0]["rows_verified"] > 0
    assert (tmp_path / "results.png").stat().st_size > 0
