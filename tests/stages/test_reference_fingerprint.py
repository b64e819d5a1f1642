"""The DFPO reference cache's fingerprint covers what changes the reference's log-probs: weights, config.json,
tokenizer files, model code in the directory, the attention implementation and dtype, and the data encoding —
each change gives another fingerprint (so a stale cache is never reused); pedgpt's own bookkeeping does not."""

import json
import shutil

import pytest
import torch
from safetensors.torch import save_file

from pedgpt.stages import reference_cache as rc

EXAMPLES = [
    {"chosen_ids": [1, 5, 6], "chosen_labels": [-100, 5, 6], "rejected_ids": [1, 5, 7], "rejected_labels": [-100, 5, 7]}
]
SETTINGS = dict(
    template="human_assistant", tokenizer_fp="t", max_len=64, truncation="left", dtype="float32", attention="sdpa"
)


@pytest.fixture
def ref_dir(tmp_path):
    d = tmp_path / "ref"
    d.mkdir()
    save_file({"w": torch.arange(6.0)}, str(d / "model.safetensors"))
    (d / "config.json").write_text(json.dumps({"model_type": "llama", "rope_theta": 10000.0, "rms_norm_eps": 1e-5}))
    (d / "tokenizer.json").write_text('{"model": {"vocab": {"a": 0}}}')
    (d / "tokenizer_config.json").write_text('{"bos_token": "<s>"}')
    (d / "pedgpt_complete.json").write_text('{"init_dir": "/some/run"}')
    return d


def fp(ref_dir, tmp_path, examples=EXAMPLES, **changes):
    return rc.fingerprint(examples, **{**SETTINGS, **changes}, ref_dir=str(ref_dir), cache_dir=str(tmp_path / "c"))


def edit_json(path, **changes):
    obj = json.loads(path.read_text())
    path.write_text(json.dumps({**obj, **changes}))


@pytest.mark.parametrize(
    "change",
    [
        lambda d: save_file({"w": torch.arange(6.0) + 1}, str(d / "model.safetensors")),  # weights
        lambda d: torch.save({"extra": torch.ones(2)}, d / "pytorch_model.bin"),  # weights in another format
        lambda d: edit_json(d / "config.json", rope_theta=500000.0),
        lambda d: edit_json(d / "config.json", rms_norm_eps=1e-6),
        lambda d: edit_json(d / "tokenizer.json", model={"vocab": {"b": 0}}),
        lambda d: edit_json(d / "tokenizer_config.json", bos_token=None),
        lambda d: (d / "tokenizer.model").write_bytes(b"\x0a\x03sp"),
        lambda d: (d / "modeling_custom.py").write_text("SCALE = 2\n"),  # model code in the directory
    ],
    ids=[
        "weights",
        "bin_weights",
        "config_rope_theta",
        "config_rms_norm_eps",
        "tokenizer_json",
        "tokenizer_config",
        "tokenizer_model",
        "model_code",
    ],
)
def test_a_change_to_the_reference_directory_changes_the_fingerprint(ref_dir, tmp_path, change):
    before = fp(ref_dir, tmp_path)
    change(ref_dir)
    assert fp(ref_dir, tmp_path) != before


@pytest.mark.parametrize(
    "key,value",
    [
        ("attention", "eager"),
        ("dtype", "bfloat16"),
        ("max_len", 128),
        ("template", "chatml"),
        ("tokenizer_fp", "u"),
        ("truncation", "right"),
    ],
)
def test_a_change_to_the_reference_pass_or_the_encoding_settings_changes_the_fingerprint(ref_dir, tmp_path, key, value):
    assert fp(ref_dir, tmp_path, **{key: value}) != fp(ref_dir, tmp_path)


def test_a_change_to_the_encoded_data_changes_the_fingerprint(ref_dir, tmp_path):
    other = [{**EXAMPLES[0], "chosen_labels": [-100, -100, 6]}]
    assert fp(ref_dir, tmp_path, other) != fp(ref_dir, tmp_path)


def test_bookkeeping_and_the_directory_path_do_not_change_it(ref_dir, tmp_path):
    before = fp(ref_dir, tmp_path)
    (ref_dir / "pedgpt_complete.json").write_text('{"init_dir": "/another/run"}')
    copy = tmp_path / "elsewhere"
    shutil.copytree(ref_dir, copy)
    assert fp(ref_dir, tmp_path) == fp(copy, tmp_path) == before


def test_a_directory_without_weights_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="no weight files"):
        fp(tmp_path, tmp_path)
