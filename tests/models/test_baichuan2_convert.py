"""Official <-> native conversion: bit-identical tensors both ways, config keys restored, unsafe pickles refused,
the one-time cached conversion, and the command-line entry points."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

import pedgpt.models.baichuan2.convert as convert
from pedgpt.models.baichuan2.convert import (
    ConversionError,
    copy_tokenizer_extras,
    ensure_native,
    native_to_official,
    official_to_native,
)
from pedgpt.models.bin_weights import UnsafeCheckpointError, load_bin_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class NotATensor:
    """Pickled into a .bin to show that only plain tensors are accepted."""

    def __init__(self):
        self.payload = "anything"


def official_tensors(model_dir: str) -> dict[str, torch.Tensor]:
    """All tensors of an official-layout directory, read with plain torch.load."""
    index = os.path.join(model_dir, "pytorch_model.bin.index.json")
    files = (
        sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else ["pytorch_model.bin"]
    )
    out = {}
    for name in files:
        out.update(torch.load(os.path.join(model_dir, name), map_location="cpu", weights_only=True))
    return out


def native_tensors(model_dir: str) -> dict[str, torch.Tensor]:
    out = {}
    for name in os.listdir(model_dir):
        if name.endswith(".safetensors"):
            out.update(load_file(os.path.join(model_dir, name)))
    return out


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    return (
        a.dtype == b.dtype
        and a.shape == b.shape
        and a.contiguous().view(torch.uint8).equal(b.contiguous().view(torch.uint8))
    )


@pytest.mark.parametrize("family", ["baichuan2_7b", "baichuan2_13b"])
def test_native_weights_are_the_official_bytes(family, official_dir, native_dir):
    official, native = official_tensors(official_dir(family)), native_tensors(native_dir(family))
    assert sorted(official) == sorted(native)
    assert all(same_bits(official[k], native[k]) for k in official)
    assert all(t.dtype == torch.bfloat16 for t in native.values())
    norms = native["lm_head.weight"].float().norm(dim=1)
    assert norms.max() / norms.min() > 2  # NormHead rows stored un-normalised
    names = sorted(os.listdir(native_dir(family)))
    assert {
        "tokenizer.model",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "generation_config.json",
        "config.json",
    } <= set(names)
    assert not any(n.endswith(".bin") for n in names)


@pytest.mark.parametrize("family", ["baichuan2_7b", "baichuan2_13b"])
def test_official_native_official_is_bit_identical(family, official_dir, native_dir, tmp_path):
    back = native_to_official(native_dir(family), str(tmp_path / "back"))
    before, after = official_tensors(official_dir(family)), official_tensors(back)
    assert sorted(before) == sorted(after)
    assert all(same_bits(before[k], after[k]) for k in before)
    cfg_before = json.load(open(os.path.join(official_dir(family), "config.json")))
    cfg_after = json.load(open(os.path.join(back, "config.json")))
    assert cfg_after == cfg_before
    assert ("max_position_embeddings" in cfg_after) == (family == "baichuan2_7b")
    tok_cfg = json.load(open(os.path.join(back, "tokenizer_config.json")))
    assert tok_cfg["tokenizer_class"] == "BaichuanTokenizer"
    assert (tok_cfg["add_bos_token"], tok_cfg["add_eos_token"]) == (False, False)
    assert tok_cfg["pad_token"]["content"] == tok_cfg["unk_token"]["content"] == "<unk>"
    assert (
        open(os.path.join(back, "tokenizer.model"), "rb").read()
        == open(os.path.join(official_dir(family), "tokenizer.model"), "rb").read()
    )
    gen = json.load(open(os.path.join(back, "generation_config.json")))
    assert (gen["user_token_id"], gen["assistant_token_id"]) == (195, 196)


def test_native_to_official_copies_remote_code_and_shards_by_bytes(native_dir, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(native_dir("baichuan2_13b"), src)
    (src / "modeling_baichuan.py").write_text("# remote code placeholder\n")
    back = native_to_official(str(src), str(tmp_path / "back"), max_shard_bytes=200_000)
    index = json.load(open(os.path.join(back, "pytorch_model.bin.index.json")))
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) >= 3 and all(os.path.getsize(os.path.join(back, s)) < 400_000 for s in shards)
    assert index["metadata"]["total_size"] == sum(t.numel() * t.element_size() for t in official_tensors(back).values())
    assert open(os.path.join(back, "modeling_baichuan.py")).read() == "# remote code placeholder\n"


def test_native_to_official_without_tokenizer_model_names_the_file(native_dir, tmp_path):
    src = tmp_path / "export"
    shutil.copytree(native_dir("baichuan2_7b"), src)
    os.remove(src / "tokenizer.model")
    with pytest.raises(ConversionError) as err:
        native_to_official(str(src), str(tmp_path / "back"))
    assert str(src / "tokenizer.model") in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "back").exists()
    assert copy_tokenizer_extras(native_dir("baichuan2_7b"), str(src)) == ["tokenizer.model"]
    assert native_to_official(str(src), str(tmp_path / "back"))


def test_a_bin_with_a_pickled_object_is_refused_in_one_line(official_dir, tmp_path):
    bad = tmp_path / "pytorch_model.bin"
    torch.save({"model.norm.weight": torch.ones(3), "extra": NotATensor()}, bad)
    with pytest.raises(UnsafeCheckpointError) as err:
        load_bin_file(str(bad))
    assert isinstance(err.value, ValueError)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)
    src = tmp_path / "official"
    shutil.copytree(official_dir("baichuan2_13b"), src)
    shard = sorted(p for p in os.listdir(src) if p.endswith(".bin"))[1]
    torch.save({"model.norm.weight": torch.ones(3), "extra": NotATensor()}, src / shard)
    with pytest.raises(UnsafeCheckpointError, match=shard):
        official_to_native(str(src), str(tmp_path / "native"))
    assert not (tmp_path / "native").exists()


def test_ensure_native_converts_once_and_rekeys_on_change(official_dir, tmp_path):
    src = tmp_path / "download"
    shutil.copytree(official_dir("baichuan2_7b"), src)
    cache, lines = tmp_path / "cache", []
    first = ensure_native(str(src), str(cache), log=lines.append)
    assert lines == [f"converted Baichuan2 {src} -> {first}"]
    stamps = {n: os.stat(os.path.join(first, n)).st_mtime_ns for n in os.listdir(first)}
    second = ensure_native(str(src), str(cache), log=lines.append)
    assert second == first and len(lines) == 2 and lines[1].startswith("using converted Baichuan2")
    assert stamps == {n: os.stat(os.path.join(first, n)).st_mtime_ns for n in os.listdir(first)}
    with open(src / "generation_config.json", "a") as f:
        f.write(" ")
    third = ensure_native(str(src), str(cache), log=lines.append)
    assert third != first and lines[2] == f"converted Baichuan2 {src} -> {third}"
    assert sorted(n for n in os.listdir(cache / "converted") if not n.startswith(".")) == sorted(
        [os.path.basename(first), os.path.basename(third), "file_hashes.json"]
    )


def test_ensure_native_loser_of_a_race_uses_the_winners_copy(official_dir, tmp_path, monkeypatch):
    src, cache, lines = official_dir("baichuan2_13b"), tmp_path / "cache", []
    real = convert._write_native

    def write_and_lose(source, out):  # another process finishes the same conversion first
        real(source, out)
        dst = os.path.join(os.path.dirname(out), os.path.basename(out).split(".tmp-")[0].lstrip("."))
        shutil.copytree(out, dst)

    monkeypatch.setattr(convert, "_write_native", write_and_lose)
    got = ensure_native(src, str(cache), log=lines.append)
    assert os.path.isfile(os.path.join(got, "config.json"))
    assert lines == [f"using converted Baichuan2 {src} -> {got}"]
    assert [n for n in os.listdir(cache / "converted") if n.startswith(".")] == []


def test_ensure_native_leaves_other_models_alone(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    lines = []
    assert ensure_native(str(tmp_path), str(tmp_path / "cache"), log=lines.append) == str(tmp_path)
    assert lines == [] and not (tmp_path / "cache").exists()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


@pytest.mark.slow
def test_command_line_round_trip_with_key_value_words(tmp_path):
    tiny = run_cli("-m", "pedgpt.models.tiny", "family=baichuan2_13b", f"out={tmp_path / 'official'}", "seed=2")
    assert tiny.returncode == 0, tiny.stderr
    fwd = run_cli("-m", "pedgpt.models.convert", f"src={tmp_path / 'official'}", f"out={tmp_path / 'native'}")
    assert fwd.returncode == 0, fwd.stderr
    assert json.load(open(tmp_path / "native" / "config.json"))["position_embedding"] == "alibi"
    back = run_cli(
        "-m", "pedgpt.models.convert", f"--src={tmp_path / 'native'}", "--out", str(tmp_path / "back"), "to=baichuan2"
    )
    assert back.returncode == 0, back.stderr
    before, after = official_tensors(str(tmp_path / "official")), official_tensors(str(tmp_path / "back"))
    assert sorted(before) == sorted(after) and all(same_bits(before[k], after[k]) for k in before)
    again = run_cli(
        "-m", "pedgpt.models.convert", f"src={tmp_path / 'native'}", f"out={tmp_path / 'back'}", "to=baichuan2"
    )
    assert again.returncode == 2
    assert again.stderr.count("\n") == 1 and "not empty" in again.stderr
    usage = run_cli("-m", "pedgpt.models.convert", f"src={tmp_path / 'native'}")
    assert usage.returncode == 2 and usage.stderr.count("\n") == 1 and "--out" in usage.stderr
    helped = run_cli("-m", "pedgpt.models.tiny", "--help")
    assert helped.returncode == 0 and "family" in helped.stdout


def test_entry_points_in_process_accept_key_value_words(official_dir, tmp_path, capsys):
    from pedgpt.models.convert import main as convert_main
    from pedgpt.models.tiny import main as tiny_main

    assert convert_main([f"src={official_dir('baichuan2_7b')}", f"out={tmp_path / 'native'}"]) == 0
    assert json.load(open(tmp_path / "native" / "config.json"))["position_embedding"] == "rope"
    assert tiny_main(["family=qwen2_5", f"out={tmp_path / 'qwen'}", "seed=1"]) == 0
    assert convert_main([f"src={tmp_path / 'qwen'}", f"out={tmp_path / 'qwen-copy'}"]) == 0
    assert sorted(os.listdir(tmp_path / "qwen")) == sorted(os.listdir(tmp_path / "qwen-copy"))
    capsys.readouterr()
    assert convert_main([f"src={tmp_path / 'qwen'}", f"out={tmp_path / 'x'}", "to=baichuan2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a native Baichuan2" in err
