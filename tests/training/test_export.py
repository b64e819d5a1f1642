"""`python -m pedgpt.export`: an HF export from any checkpoint; a checkpoint of another model is refused."""

import os
import shutil

import pytest
import torch

from helpers import compose
from pedgpt.common.errors import CheckpointError, NonFiniteError
from pedgpt.export import main
from pedgpt.training.checkpoint_export import export_checkpoint
from pedgpt.training.pipeline import run_pipeline

TINY = [
    "trainer.max_steps=2",
    "trainer.limit_val_batches=1",
    "progress_bar=false",
    "logger=csv",
    "checkpoint_every_n_steps=2",
    "model.arch.hidden_size=32",
    "model.arch.intermediate_size=64",
    "model.arch.num_hidden_layers=2",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    sft_dir = tmp_path_factory.mktemp("sft")
    sft = run_pipeline(compose(TINY + ["+experiment=sft_demo", f"paths.cache_dir={cache}"]), str(sft_dir))
    mole_dir = tmp_path_factory.mktemp("mole")
    mole = run_pipeline(
        compose(
            TINY
            + [
                "+experiment=mole_demo",
                "adapter.router=task",
                f"paths.cache_dir={cache}",
                f"init_from={sft['sft']['export_dir']}",
            ]
        ),
        str(mole_dir),
    )
    return sft_dir, sft, mole_dir, mole, cache


def _logits(model, tok):
    ids = tok("宝宝发烧三天了怎么办", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return model(ids).logits


def test_export_of_the_last_checkpoint_equals_the_stage_export(runs, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    sft_dir, sft, *_ = runs
    out = export_checkpoint(str(sft_dir / "sft" / "checkpoints" / "step=2.ckpt"), str(tmp_path / "out"))
    tok = AutoTokenizer.from_pretrained(out)
    a = AutoModelForCausalLM.from_pretrained(out).eval()
    b = AutoModelForCausalLM.from_pretrained(sft["sft"]["export_dir"]).eval()
    assert torch.equal(_logits(a, tok), _logits(b, tok))


def test_adapter_checkpoint_exports_an_adapter_and_merges_per_task(runs, tmp_path):
    from transformers import AutoModelForCausalLM

    from pedgpt.adapters import set_task_ids
    from pedgpt.models.exports import load_for_inference

    _, _, mole_dir, mole, _ = runs
    ckpt = str(mole_dir / "mole" / "checkpoints" / "step=2.ckpt")
    adapter = load_for_inference(export_checkpoint(ckpt, str(tmp_path / "adapter")))
    assert adapter.has_adapter
    merged = AutoModelForCausalLM.from_pretrained(export_checkpoint(ckpt, str(tmp_path / "merged"), "evidiag")).eval()
    ids = adapter.tokenizer("宝宝发烧三天了怎么办", return_tensors="pt")["input_ids"]
    set_task_ids(adapter.model, torch.tensor([1]))  # evidiag
    with torch.no_grad():
        want = adapter.model(ids).logits
        got = merged(ids).logits
    assert torch.allclose(got, want, atol=1e-5)
    assert main([f"ckpt={ckpt}", f"out={tmp_path / 'cli'}"]) == 0
    assert main([f"ckpt={tmp_path / 'nope.ckpt'}", f"out={tmp_path / 'x'}"]) == 2


def test_resuming_with_another_model_is_refused(runs, tmp_path):
    sft_dir, _, _, _, cache = runs
    ckpt = str(sft_dir / "sft" / "checkpoints" / "step=2.ckpt")
    cfg = compose(
        [t for t in TINY if "hidden_size" not in t]
        + ["+experiment=sft_demo", "model.arch.hidden_size=48", f"paths.cache_dir={cache}", f"ckpt_path='{ckpt}'"]
    )
    with pytest.raises(CheckpointError, match="written for another model"):
        run_pipeline(cfg, str(tmp_path))


def _copy_checkpoint(runs, tmp_path):
    """The SFT step-2 checkpoint and its checksum record, copied so that damaging it leaves the fixture alone."""
    sft_dir, *_ = runs
    src = sft_dir / "sft" / "checkpoints" / "step=2.ckpt"
    dst = tmp_path / "step=2.ckpt"
    shutil.copy(src, dst)
    shutil.copy(f"{src}.sha256.json", f"{dst}.sha256.json")
    return dst


def test_export_of_a_checkpoint_with_flipped_bytes_is_one_line(runs, tmp_path, capsys):
    ckpt = _copy_checkpoint(runs, tmp_path)
    with open(ckpt, "r+b") as f:  # 4 KB of the weights flipped; the file keeps its size
        f.seek(os.path.getsize(ckpt) // 2)
        chunk = f.read(4096)
        f.seek(-len(chunk), os.SEEK_CUR)
        f.write(bytes(b ^ 0xFF for b in chunk))
    assert main([f"ckpt={ckpt}", f"out={tmp_path / 'out'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {ckpt}: sha256 differs from its checksum record (the checkpoint is damaged)"]
    assert not (tmp_path / "out").exists()


def test_export_of_a_truncated_checkpoint_is_one_line(runs, tmp_path, capsys):
    ckpt = _copy_checkpoint(runs, tmp_path)
    size = os.path.getsize(ckpt)
    with open(ckpt, "r+b") as f:
        f.truncate(size // 2)
    assert main([f"ckpt={ckpt}", f"out={tmp_path / 'out'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {ckpt}: {size // 2} bytes, its checksum record says {size} (truncated or changed)"]
    os.remove(f"{ckpt}.sha256.json")  # a checkpoint from before checksums: the archive structure tells
    assert main([f"ckpt={ckpt}", f"out={tmp_path / 'out'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {ckpt}: corrupted or truncated checkpoint (not a complete torch.save archive)"]


def test_export_of_non_finite_weights_is_refused(runs, tmp_path, capsys):
    sft_dir, *_ = runs
    ckpt = torch.load(sft_dir / "sft" / "checkpoints" / "step=2.ckpt", weights_only=True)
    name = next(k for k in ckpt["state_dict"] if k.endswith("embed_tokens.weight"))
    ckpt["state_dict"][name][3, 5] = float("nan")
    path = tmp_path / "step=2.ckpt"
    torch.save(ckpt, path)  # a well-formed archive (no checksum record) holding a NaN
    with pytest.raises(NonFiniteError, match=rf"^{path}: .*embed_tokens.weight holds non-finite values; refusing"):
        export_checkpoint(str(path), str(tmp_path / "out"))
    assert main([f"ckpt={path}", f"out={tmp_path / 'out'}"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_model_directory_without_tokenizer_files_names_the_folder_and_the_files(runs, tmp_path):
    from pedgpt.common.errors import ModelPathError
    from pedgpt.models.exports import load_for_inference

    _, sft, *_ = runs
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in os.listdir(sft["sft"]["export_dir"]):
        if not name.startswith("tokenizer") and name not in ("special_tokens_map.json", "chat_template.jinja"):
            shutil.copy(os.path.join(sft["sft"]["export_dir"], name), bare / name)
    with pytest.raises(
        ModelPathError,
        match=rf"^{bare}: no tokenizer files \(missing tokenizer.json, or tokenizer.model, or vocab.json with "
        r"merges.txt\); copy them from the model it was trained from$",
    ):
        load_for_inference(str(bare))
