"""Gradient accumulation equals one big batch: for every window the data module hands out — the ragged epoch
tail included — the accumulated loss and gradients of its micro-batches equal (≤ 1e-6, fp32) those of one batch
holding all of the window's examples, for SFT (packed and padded), DFPO and MoE-LoRA."""

import functools

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from pedgpt.data.collate import collate_padded, collate_preference
from pedgpt.data.datamodule import ExamplesDataModule, WindowBatchSampler, WindowCollate
from pedgpt.data.packing import packed_rows
from pedgpt.stages.dfpo import DFPOModule
from pedgpt.stages.mole import MoLEModule
from pedgpt.stages.sft import SFTModule

VOCAB, N = 200, 11  # 11 examples, micro-batch 2, accumulate 2: windows of 2, 2 and 1 micro-batches (+1 dropped)


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    cfg._attn_implementation = "sdpa"
    d = tmp_path_factory.mktemp("export")
    LlamaForCausalLM(cfg).save_pretrained(d)
    return str(d)


def sequences(seed, n=N):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        length = int(torch.randint(6, 30, (1,), generator=g))
        ids = torch.randint(3, VOCAB, (length,), generator=g).tolist()
        prompt = int(torch.randint(1, length - 2, (1,), generator=g))
        out.append({"input_ids": ids, "labels": [-100] * prompt + ids[prompt:], "task_id": i % 3})
    return out


def pairs(seed, n=N):
    a, b = sequences(seed, n), sequences(seed + 1, n)
    g = torch.Generator().manual_seed(seed + 2)
    return [
        {
            "chosen_ids": x["input_ids"],
            "chosen_labels": x["labels"],
            "rejected_ids": y["input_ids"],
            "rejected_labels": y["labels"],
            "task_id": x["task_id"],
            "index": i,
            "ref_chosen": float(torch.randn((), generator=g)) - 40,
            "ref_rejected": float(torch.randn((), generator=g)) - 40,
        }
        for i, (x, y) in enumerate(zip(a, b))
    ]


def windows(examples, collate, batch_size=2, accumulate=2):
    """(micro-batches, one big batch) for every window of an epoch, as the data module forms them."""
    dm = ExamplesDataModule(examples, examples[:2], collate, batch_size, batch_size, seed=5, accumulate=accumulate)
    sampler = WindowBatchSampler(dm.sampler, batch_size, accumulate, dm.drop_last)
    out = []
    for idx in sampler:
        chunk = [examples[i] for i in idx]
        out.append((WindowCollate(collate, batch_size)(chunk), collate(chunk)))
    assert [len(m) for m, _ in out] == [2, 2, 1] and len(list(dm.train_dataloader())) == 3
    return out


def grads_and_loss(module, micro):
    module.zero_grad(set_to_none=True)
    loss, _, _ = module.accumulate(micro)
    return {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}, loss


def prepared(module):
    module.manual_backward = lambda loss: loss.backward()  # the Trainer's backward, without a Trainer
    module.configure_model()
    module.net.train()
    return module


def assert_window_equals_big_batch(module, examples, collate):
    for micro, big in windows(examples, collate):
        g_acc, l_acc = grads_and_loss(module, micro)
        g_big, l_big = grads_and_loss(module, [big])
        assert g_acc and g_acc.keys() == g_big.keys()
        assert torch.allclose(l_acc, l_big, atol=1e-6, rtol=1e-6), (l_acc, l_big)
        for name in g_acc:
            assert torch.allclose(g_acc[name], g_big[name], atol=1e-6, rtol=1e-5), name


def opt(params):
    return torch.optim.SGD(params, lr=0.0)


def test_sft_padded_windows_equal_one_big_batch(export_dir):
    module = prepared(SFTModule(export_dir, opt))
    assert_window_equals_big_batch(module, sequences(1), functools.partial(collate_padded, pad_id=0))


def test_sft_packed_windows_equal_one_big_batch(export_dir):
    rows, collate, _ = packed_rows(sequences(2, 40), 48, 0)
    assert len(rows) >= N and any(len(r) > 1 for r in rows[:N])  # several documents per row
    rows = rows[:N]
    module = prepared(SFTModule(export_dir, opt))
    assert_window_equals_big_batch(module, rows, collate)


def test_dfpo_windows_equal_one_big_batch_normalised_by_pairs(export_dir):
    module = prepared(DFPOModule(export_dir, opt, beta=0.5, mu=0.7))
    assert_window_equals_big_batch(module, pairs(3), functools.partial(collate_preference, pad_id=0))


@pytest.mark.parametrize("router", ["token", "task"])
def test_moe_lora_windows_equal_one_big_batch(export_dir, router):
    adapter = dict(
        target_modules=["q_proj", "v_proj", "down_proj"],
        rank=4,
        alpha=8,
        num_universal=1,
        num_specific=2,
        router=router,
        dropout=0.0,
    )
    module = prepared(MoLEModule(export_dir, opt, adapter=adapter))
    for name, p in module.named_parameters():  # B = 0 at init would hide the routing from the gradients
        if "moe_lora_B" in name:
            torch.nn.init.normal_(p, std=0.1)
    assert_window_equals_big_batch(module, sequences(4), functools.partial(collate_padded, pad_id=0))


def test_window_sampler_keeps_every_example_once_per_epoch_and_the_tail_steps_alone():
    dm = ExamplesDataModule(list(range(23)), [0], lambda xs: xs, batch_size=3, val_batch_size=1, seed=1, accumulate=4)
    batches = list(dm.train_dataloader())
    assert [len(w) for w in batches] == [4, 3]  # 7 micro-batches of 3 (2 examples dropped): 4 + a tail of 3
    seen = [x for w in batches for micro in w for x in micro]
    assert len(seen) == len(set(seen)) == 21
