"""The token store: built once (atomically, under a lock), keyed by what the examples depend on, read back equal to
the in-memory encoding, with the skip counts, packing index and per-pair index the stages need."""

import multiprocessing
import os
import time
from collections import Counter

import pytest

from helpers import compose
from pedgpt.data import stage_data as sd
from pedgpt.data.collate import collate_preference
from pedgpt.data.datamodule import ExamplesDataModule
from pedgpt.data.encode import encode_instructions, encode_pairs, encode_texts
from pedgpt.data.packing import pack_greedy
from pedgpt.data.templates import get_template
from pedgpt.data.token_store import Encoding, PackedRows, StoredExamples, encode_split, open_store
from pedgpt.stages import get_stage
from pedgpt.stages.examples import stage_examples, store_material


@pytest.fixture()
def cfg(tmp_path):
    return compose([f"paths.cache_dir={tmp_path / 'cache'}"])


def lines(capsys):
    return [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("token store")]


def test_sft_store_is_built_once_then_opened_and_equals_the_in_memory_encoding(cfg, tiny_tokenizer, capsys):
    stage = get_stage("sft")(cfg)
    first = stage_examples(stage, tiny_tokenizer)
    (built,) = lines(capsys)
    again = stage_examples(stage, tiny_tokenizer)
    (cached,) = lines(capsys)
    key = first.info["token_store"]
    assert f"token store sft {key}: built" in built and f"token store sft {key}: cached" in cached
    tmpl, max_len = get_template(cfg.model.template), int(cfg.sft.max_len)
    for split, got in (("train", again.train), ("dev", again.val)):
        skipped: Counter = Counter()
        want = encode_instructions(sd.corpus_part(cfg.data, "sft", split), tiny_tokenizer, tmpl, max_len, skipped)
        assert isinstance(got, (StoredExamples, PackedRows))
        flat = [e for row in got for e in row] if isinstance(got, PackedRows) else list(got)
        order = sorted(range(len(flat)), key=lambda i: flat[i]["input_ids"])
        assert sorted(want, key=lambda e: e["input_ids"]) == [flat[i] for i in order]


def test_cpt_store_holds_the_mixed_documents_and_first_fit_rows(cfg, tiny_tokenizer):
    stage = get_stage("cpt")(cfg)
    data = stage_examples(stage, tiny_tokenizer)
    enc = stage.encoding(tiny_tokenizer)
    docs = encode_texts(enc.items["train"], tiny_tokenizer, int(cfg.cpt.max_len))  # labels = inputs
    rows = pack_greedy([len(d["input_ids"]) for d in docs], int(cfg.cpt.max_len))
    assert isinstance(data.train, PackedRows) and len(data.train) == len(rows)
    assert [data.train[r] for r in (0, len(rows) // 2, len(rows) - 1)] == [
        [docs[i] for i in rows[r]] for r in (0, len(rows) // 2, len(rows) - 1)
    ]
    assert data.info["train_examples"] == len(docs) and 0 < data.info["train_packing_efficiency"] <= 1


def test_a_cached_open_never_encodes(cfg, tiny_tokenizer):
    stage = get_stage("sft")(cfg)
    material = store_material(stage, tiny_tokenizer)
    built = open_store(cfg.paths.cache_dir, "sft", material, lambda: stage.encoding(tiny_tokenizer), say=print)

    def refuse():
        raise AssertionError("a cached store was encoded again")

    again = open_store(cfg.paths.cache_dir, "sft", material, refuse, say=print)
    assert (built.status, again.status, again.path) == ("built", "cached", built.path)


@pytest.mark.parametrize(
    "override, changes",
    [
        ("cpt.max_len=128", True),
        ("model.template=chatml", True),
        ("cpt.instruction_ratio=0.5", True),
        ("seed=7", True),
        ("data.demo_seed=3", True),
        ("cpt.optimizer.lr=0.5", False),
        ("trainer.max_steps=9", False),
        ("data.num_proc=1", False),
    ],
)
def test_the_key_follows_what_changes_the_examples(tmp_path, tiny_tokenizer, override, changes):
    base = store_material(get_stage("cpt")(compose([])), tiny_tokenizer)
    other = store_material(get_stage("cpt")(compose([override])), tiny_tokenizer)
    assert (base != other) is changes


def test_mole_keys_follow_general_ratio_and_its_variant_shares_them(tiny_tokenizer):
    base = store_material(get_stage("mole")(compose([])), tiny_tokenizer)
    assert store_material(get_stage("mole")(compose(["mole.general_ratio=0.5"])), tiny_tokenizer) != base
    assert store_material(get_stage("lora_baseline")(compose([])), tiny_tokenizer) == base  # same encoding


def test_another_tokenizer_changes_the_key(tiny_tokenizer):
    from pedgpt.models.tokenizer import train_bpe_tokenizer

    stage = get_stage("sft")(compose([]))
    other = train_bpe_tokenizer(["另一个分词器的训练文本。"] * 30, vocab_size=300)
    assert store_material(stage, tiny_tokenizer)["tokenizer"] != store_material(stage, other)["tokenizer"]


def _numbered(items):
    return [{"input_ids": [i, i + 1], "labels": [i]} if i % 7 else "multiple_of_seven" for i in items]


def test_parallel_tokenization_equals_one_process_and_counts_every_skip():
    enc = Encoding({"train": list(range(2500))}, _numbered, {"input_ids": "ids", "labels": "ids"}, {})
    one, skipped_one = encode_split(enc.items["train"], enc, num_proc=1)
    two, skipped_two = encode_split(enc.items["train"], enc, num_proc=2)
    assert one["input_ids"] == two["input_ids"] == [[i, i + 1] for i in range(2500) if i % 7]
    assert skipped_one == skipped_two == Counter({"multiple_of_seven": len(range(0, 2500, 7))})
    assert len(one) + skipped_one["multiple_of_seven"] == 2500


def test_skip_counts_survive_the_store(tmp_path, tiny_tokenizer):
    cfg = compose([f"paths.cache_dir={tmp_path}", "sft.max_len=48", "sft.packing=false"])
    data = stage_examples(get_stage("sft")(cfg), tiny_tokenizer)
    skipped: Counter = Counter()
    tmpl = get_template(cfg.model.template)
    for split in ("train", "dev"):
        encode_instructions(sd.corpus_part(cfg.data, "sft", split), tiny_tokenizer, tmpl, 48, skipped)
    assert data.info["skipped"] == dict(skipped) and sum(skipped.values()) > 0


def _broken(items):
    if 1500 in items:
        raise RuntimeError("killed mid-build")
    return _numbered(items)


def test_a_failed_build_leaves_no_store_and_no_temporary_files(tmp_path):
    enc = Encoding({"train": list(range(2000)), "dev": [1, 2]}, _broken, {"input_ids": "ids", "labels": "ids"}, {})
    with pytest.raises(RuntimeError, match="killed mid-build"):
        open_store(str(tmp_path), "toy", {"x": 1}, lambda: enc, say=print)
    assert [p for p in os.listdir(tmp_path / "tokens") if not p.endswith(".lock")] == []
    ok = Encoding({"train": list(range(2000)), "dev": [1, 2]}, _numbered, enc.columns, {})
    assert open_store(str(tmp_path), "toy", {"x": 1}, lambda: ok, say=print).status == "built"


def _slow(items):
    time.sleep(0.5)
    return _numbered(items)


def _open_slowly(cache):
    enc = Encoding({"train": [1, 2, 3], "dev": [4]}, _slow, {"input_ids": "ids", "labels": "ids"}, {})
    return open_store(cache, "race", {"x": 1}, lambda: enc, say=lambda s: None).status


def test_processes_that_open_one_store_together_tokenize_once(tmp_path):
    with multiprocessing.get_context("fork").Pool(3) as pool:
        statuses = pool.map(_open_slowly, [str(tmp_path)] * 3)
    assert sorted(statuses) == ["built", "cached", "cached"]


def test_stored_pairs_carry_their_index_and_reference_columns(tmp_path, tiny_tokenizer):
    from pedgpt.stages import reference_cache as rc

    cfg = compose([f"paths.cache_dir={tmp_path}", "dfpo.max_len=2048"])
    stage = get_stage("dfpo")(cfg)
    data = stage_examples(stage, tiny_tokenizer)
    pairs = sd.corpus_part(cfg.data, "preference", "train")
    want = encode_pairs(pairs, tiny_tokenizer, get_template(cfg.model.template), int(cfg.dfpo.max_len), Counter())
    assert len(want) > 8 and list(data.train) == want  # same pairs, same order, same index
    import torch

    n = len(data.train)
    rc.attach(data.train, torch.arange(n, dtype=torch.float32), -torch.arange(n, dtype=torch.float32))
    batch = collate_preference(data.train.__getitems__([3, 1]), tiny_tokenizer.pad_token_id)
    assert batch["index"].tolist() == [3, 1] and batch["ref_chosen"].tolist() == [3.0, 1.0]
    assert batch["ref_rejected"].tolist() == [-3.0, -1.0]


def test_each_rank_reads_only_its_share(tmp_path, tiny_tokenizer):
    cfg = compose([f"paths.cache_dir={tmp_path}", "dfpo.max_len=2048"])
    data = stage_examples(get_stage("dfpo")(cfg), tiny_tokenizer)
    seen: dict[int, list[int]] = {}
    for rank in (0, 1):
        train = StoredExamples(data.train.ds, data.train.key, with_index=True)
        asked: list[int] = []
        fetch = train.__getitems__
        train.__getitems__ = lambda idx, fetch=fetch, asked=asked: (asked.extend(idx), fetch(idx))[1]
        dm = ExamplesDataModule(train, data.val, data.collate, 4, 4, seed=0)
        dm.sampler.rank, dm.sampler.world_size = rank, 2
        for _ in dm.train_dataloader():
            pass
        seen[rank] = asked
    assert not set(seen[0]) & set(seen[1])
    assert len(seen[0]) == len(seen[1]) == len(data.train) // 2 // 4 * 4


def test_a_split_whose_every_item_is_skipped_is_an_empty_store(tmp_path):
    enc = Encoding({"train": [0, 7, 14], "dev": [1]}, _numbered, {"input_ids": "ids", "labels": "ids"}, {})
    store = open_store(str(tmp_path), "skips", {"x": 1}, lambda: enc, say=print)
    assert len(store.split("train")) == 0 and store.info["skipped"] == {"multiple_of_seven": 3}


@pytest.mark.slow
def test_the_tokenize_command_builds_what_training_then_opens(tmp_path):
    import subprocess
    import sys

    from helpers import ROOT

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    common = [f"paths.cache_dir={tmp_path / 'cache'}", "pipeline=[cpt,sft]"]
    cmd = [sys.executable, "-m", "pedgpt.data.tokenize", *common, f"hydra.run.dir={tmp_path / 'tok'}"]
    made = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr[-2000:]
    built = [ln for ln in made.stdout.splitlines() if ln.startswith("token store")]
    assert [ln.split()[2] for ln in built] == ["cpt", "sft"] and all(": built (" in ln for ln in built)
    train = [sys.executable, "-m", "pedgpt.train", *common, "trainer.max_steps=1", "trainer.limit_val_batches=1"]
    train += ["gen.enabled=false", "progress_bar=false", f"hydra.run.dir={tmp_path / 'run'}"]
    ran = subprocess.run(train, cwd=ROOT, env=env, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr[-2000:]
    opened = [ln for ln in ran.stdout.splitlines() if ln.startswith("token store")]
    assert [ln.replace(": cached (", ": built (") for ln in opened] == built  # same keys, same folders
    assert all(": cached (" in ln for ln in opened)
    bad_cmd = [*cmd[:3], "data.num_proc=0", f"hydra.run.dir={tmp_path / 'bad'}"]
    bad = subprocess.run(bad_cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "data.num_proc" in bad.stderr


def test_a_checkpoint_of_another_store_is_not_resumed_onto_this_one():
    examples = [{"input_ids": [1, 2], "labels": [1, 2]}] * 8
    dm = ExamplesDataModule(examples, examples, list, 2, 2, seed=0, info={"token_store": "aaaa"})
    state = {"epoch": 0, "samples_consumed": 4, "dataset_size": 8, "data_key": "bbbb"}
    with pytest.raises(ValueError, match="token store bbbb, this run has aaaa"):
        dm.load_state_dict(state)
    dm.load_state_dict({**state, "data_key": "aaaa"})
    assert dm.sampler.start == 4
