"""DFPO stage: the three reference modes agree, the reference cache keys, preference encoding, bad input, logging."""

import csv
import functools
import math
import os
import shutil
from collections import Counter

import pytest
import torch

from helpers import compose
from pedgpt.common.constants import IGNORE_INDEX
from pedgpt.data.collate import collate_preference
from pedgpt.data.encode import encode_pairs
from pedgpt.data.schema import Message, PreferencePair, RecordError
from pedgpt.data.templates import get_template
from pedgpt.models.build import load_pretrained
from pedgpt.models.logps import SequenceLogProbs
from pedgpt.stages import reference_cache as rc
from pedgpt.stages.dfpo import DFPOModule, attach_reference

TEMPLATE = get_template("human_assistant")
ADAPTER = dict(
    target_modules=["q_proj", "v_proj", "down_proj"],
    rank=4,
    alpha=8,
    num_universal=1,
    num_specific=2,
    router="noisy_token",
    dropout=0.0,
)


def _pair(q, good, bad, task="medkqa", history=()):
    return PreferencePair(prompt=[*history, Message("user", q)], chosen=good, rejected=bad, task=task)


PAIRS = [
    _pair("孩子发烧38度怎么办？", "先别慌，多喝水，观察精神，超过三天请就医。", "吃点药就行。"),
    _pair("宝宝咳嗽有痰", "可以拍背帮助排痰，保持室内湿润。", "不用管。", task="trerecom"),
    _pair("出疹子还发热是什么病？", "可能是幼儿急疹，热退疹出，建议门诊确认。", "不知道。", task="evidiag"),
    _pair("小孩拉肚子", "注意补液防脱水，少量多次喂口服补液盐。", "饿一天就好。"),
    _pair("夜里哭闹不睡", "先排查饥饿、尿布和室温，再看是否生病。", "随他哭。", task="general"),
    _pair("孩子不爱吃饭", "规律进餐，减少零食，别强迫喂食。", "饿了自然吃。", task="consult"),
]


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory, tiny_tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tiny_tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=tiny_tokenizer.bos_token_id,
        eos_token_id=tiny_tokenizer.eos_token_id,
        pad_token_id=tiny_tokenizer.pad_token_id,
    )
    d = tmp_path_factory.mktemp("export")
    LlamaForCausalLM(cfg).save_pretrained(d, safe_serialization=True)
    tiny_tokenizer.save_pretrained(d)
    return str(d)


@pytest.fixture(scope="module")
def examples(tiny_tokenizer):
    skipped = Counter()
    ex = encode_pairs(PAIRS, tiny_tokenizer, TEMPLATE, 128, skipped)
    assert len(ex) == len(PAIRS) and not skipped
    return ex


def _stage(export_dir, ref, mu=1.0, adapter=None):
    st = DFPOModule(
        init_dir=export_dir,
        optimizer=functools.partial(torch.optim.AdamW, lr=1e-2),
        beta=0.1,
        mu=mu,
        ref=ref,
        adapter=adapter,
    )
    st.configure_model()
    return st


def _with_reference(export_dir, examples, pad):
    ex = [dict(e) for e in examples]
    rc.attach(ex, *rc.compute_reference_logps(SequenceLogProbs(load_pretrained(export_dir)), ex, pad, batch_size=4))
    return ex


def _independent_logps(export_dir, batch):
    """Summed label log-probs per row and per-row token counts, from the HF model's full logits."""
    lm = load_pretrained(export_dir).eval()
    with torch.no_grad():
        logits = lm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.double()
    y = batch["labels"][:, 1:]
    mask = y != IGNORE_INDEX
    lp = torch.log_softmax(logits[:, :-1], -1).gather(-1, y.clamp_min(0)[..., None])[..., 0]
    return (lp * mask).sum(-1), mask.sum(-1)


# -- the three reference modes ----------------------------------------------------------------------
def test_three_reference_modes_give_the_same_first_loss(export_dir, examples, tiny_tokenizer):
    pad = tiny_tokenizer.pad_token_id
    batch = collate_preference(_with_reference(export_dir, examples, pad), pad)
    mu = 0.7
    losses = {}
    for ref, adapter in (("cached", None), ("online", None), ("adapter_disabled", ADAPTER)):
        st = _stage(export_dir, ref, mu=mu, adapter=adapter)
        out = st.compute_loss(batch, "train", st.loss_units(batch))
        losses[ref] = out.loss.item()
        assert out.metrics["rewards/margins"].abs().item() < 1e-4, ref
    # independent value: policy == reference → ln 2 + μ · mean over pairs of the chosen answer's mean-token NLL
    logp, n = _independent_logps(export_dir, batch)
    k = len(examples)
    expected = math.log(2) + mu * (-logp[:k] / n[:k]).mean().item()
    for ref, value in losses.items():
        assert value == pytest.approx(expected, abs=2e-5), ref


def test_references_stay_at_the_initial_weights_while_the_policy_moves(export_dir, examples, tiny_tokenizer):
    pad = tiny_tokenizer.pad_token_id
    batch = collate_preference(_with_reference(export_dir, examples, pad), pad)
    for ref, adapter in (("online", None), ("adapter_disabled", ADAPTER)):
        st = _stage(export_dir, ref, adapter=adapter)
        opt = torch.optim.AdamW([p for p in st.parameters() if p.requires_grad], lr=1e-2)
        for _ in range(2):
            st.compute_loss(batch, "train", st.loss_units(batch)).loss.backward()
            opt.step()
            opt.zero_grad()
        st.on_train_batch_end()
        ref_c, ref_r = st.reference_logps(batch)
        torch.testing.assert_close(ref_c, batch["ref_chosen"], atol=1e-4, rtol=0)
        torch.testing.assert_close(ref_r, batch["ref_rejected"], atol=1e-4, rtol=0)
        assert st.compute_loss(batch, "train", st.loss_units(batch)).metrics["rewards/margins"].item() > 1e-3, (
            ref
        )  # the policy moved towards the chosen answers


def test_adapter_disabled_needs_an_adapter(export_dir):
    with pytest.raises(ValueError, match="adapter_disabled needs an adapter"):
        DFPOModule(init_dir=export_dir, optimizer=torch.optim.AdamW, ref="adapter_disabled")


# -- the reference cache ----------------------------------------------------------------------------
@pytest.fixture
def cache_cfg(tmp_path):
    return compose([f"paths.cache_dir={tmp_path / 'cache'}", "dfpo.max_len=128", "dfpo.val_batch_size=4"])


def _attach(cfg, examples, export_dir, pad):
    train, val = [dict(e) for e in examples[:4]], [dict(e) for e in examples[4:]]
    return attach_reference(cfg, train, val, export_dir, pad), train + val


def test_cache_miss_then_hit_with_the_same_values(cache_cfg, examples, export_dir, tiny_tokenizer):
    pad = tiny_tokenizer.pad_token_id
    first, ex1 = _attach(cache_cfg, examples, export_dir, pad)
    second, ex2 = _attach(cache_cfg, examples, export_dir, pad)
    assert (first, second) == ("miss", "hit")
    assert [e["ref_chosen"] for e in ex1] == [e["ref_chosen"] for e in ex2]
    logp, _ = _independent_logps(export_dir, collate_preference(ex1, pad))
    k = len(ex1)
    torch.testing.assert_close(
        torch.tensor([e["ref_chosen"] for e in ex1], dtype=torch.float64), logp[:k], atol=1e-3, rtol=0
    )
    torch.testing.assert_close(
        torch.tensor([e["ref_rejected"] for e in ex1], dtype=torch.float64), logp[k:], atol=1e-3, rtol=0
    )


def test_cache_under_another_fingerprint_is_never_reused(cache_cfg, examples, export_dir, tiny_tokenizer, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    pad = tiny_tokenizer.pad_token_id
    assert _attach(cache_cfg, examples, export_dir, pad)[0] == "miss"
    (path,) = [
        os.path.join(d, f) for d, _, fs in os.walk(cache_cfg.paths.cache_dir) for f in fs if f.endswith(".safetensors")
    ]
    # a file whose metadata names another fingerprint, at this fingerprint's path: ignored, recomputed
    with safe_open(path, "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    save_file({k: v + 1 for k, v in tensors.items()}, path, metadata={"fingerprint": "another"})
    status, ex = _attach(cache_cfg, examples, export_dir, pad)
    assert status == "miss" and ex[0]["ref_chosen"] == pytest.approx(tensors["chosen"][0].item())
    assert _attach(cache_cfg, examples, export_dir, pad)[0] == "hit"
    # another max length (same token ids, since everything fits) → another fingerprint
    cache_cfg.dfpo.max_len = 127
    assert _attach(cache_cfg, examples, export_dir, pad)[0] == "miss"
    # other reference weights → another fingerprint
    other = tmp_path / "other_ref"
    shutil.copytree(export_dir, other)
    lm = load_pretrained(str(other))
    with torch.no_grad():
        lm.model.norm.weight.mul_(1.5)
    lm.save_pretrained(other, safe_serialization=True)
    status, ex = _attach(cache_cfg, examples, str(other), pad)
    assert status == "miss" and ex[0]["ref_chosen"] != pytest.approx(tensors["chosen"][0].item(), abs=1e-3)


# -- encoding: truncation and counted skips ---------------------------------------------------------
def test_long_prompt_is_cut_from_the_left_and_both_answers_kept(tiny_tokenizer):
    history = [Message("user", "孩子咳嗽三天了，" * 12), Message("assistant", "请描述体温和精神状态。" * 4)]
    pair = _pair(
        "现在还在发烧，夜里咳得厉害。", "建议今天就诊，听诊排除肺炎，按时退热。", "多喝热水。", history=history
    )
    full = encode_pairs([pair], tiny_tokenizer, TEMPLATE, 10_000, Counter())[0]
    answer = tiny_tokenizer("建议今天就诊，听诊排除肺炎，按时退热。", add_special_tokens=False)["input_ids"] + [
        tiny_tokenizer.eos_token_id
    ]
    assert full["chosen_ids"][-len(answer) :] == answer
    max_len = len(full["chosen_ids"]) - 25
    skipped = Counter()
    (ex,) = encode_pairs([pair], tiny_tokenizer, TEMPLATE, max_len, skipped)
    assert not skipped and len(ex["chosen_ids"]) == max_len
    assert ex["chosen_ids"] == full["chosen_ids"][25:] and ex["rejected_ids"] == full["rejected_ids"][25:]
    # labels: exactly the final answer (the earlier assistant turn is context), and the same prompt in both rows
    assert [t for t in ex["chosen_labels"] if t != IGNORE_INDEX] == answer
    assert ex["chosen_labels"][: -len(answer)] == [IGNORE_INDEX] * (max_len - len(answer))
    n_rej = sum(t != IGNORE_INDEX for t in ex["rejected_labels"])
    assert ex["chosen_ids"][: -len(answer)] == ex["rejected_ids"][:-n_rej]


def test_pairs_that_cannot_fit_are_dropped_and_counted(tiny_tokenizer):
    long_answer = "先测体温，再观察精神和进食。" * 20
    pairs = [_pair("孩子发烧", long_answer, "不用管。"), _pair("孩子发烧", "多喝水。", long_answer), PAIRS[0]]
    skipped = Counter()
    ex = encode_pairs(pairs, tiny_tokenizer, TEMPLATE, 48, skipped)
    assert len(ex) == 1 and skipped == {"pair_longer_than_max_len": 2}
    assert ex[0]["index"] == 0 and len(ex[0]["chosen_ids"]) <= 48


def test_answer_that_would_leave_no_prompt_token_is_dropped(tiny_tokenizer):
    full = encode_pairs([PAIRS[0]], tiny_tokenizer, TEMPLATE, 10_000, Counter())[0]
    answer_len = sum(t != IGNORE_INDEX for t in full["chosen_labels"])
    skipped = Counter()
    assert encode_pairs([PAIRS[0]], tiny_tokenizer, TEMPLATE, answer_len, skipped) == []
    assert skipped == {"pair_longer_than_max_len": 1}
    (ex,) = encode_pairs([PAIRS[0]], tiny_tokenizer, TEMPLATE, answer_len + 1, Counter())
    assert ex["chosen_labels"][0] == IGNORE_INDEX and len(ex["chosen_ids"]) == answer_len + 1


def test_identical_and_empty_answers_are_counted_skips(tiny_tokenizer):
    pairs = [
        _pair("孩子发烧", "多喝水。", "多喝水。"),
        _pair("孩子发烧", "多喝水。", " 多喝水。\n"),
        _pair("孩子发烧", "", "不用管。"),
        _pair("孩子发烧", "多喝水。", "   "),
        PAIRS[1],
    ]
    skipped = Counter()
    ex = encode_pairs(pairs, tiny_tokenizer, TEMPLATE, 128, skipped)
    assert len(ex) == 1 and skipped == {"identical_chosen_rejected": 2, "empty_answer": 2}


def test_missing_field_names_file_and_line(tmp_path):
    from pedgpt.data import stage_data as sd
    from pedgpt.data.corpus.manifest import write_manifest
    from pedgpt.data.schema import to_dict, write_jsonl

    root = tmp_path / "corpus"
    (root / "dfpo").mkdir(parents=True)
    write_jsonl(str(root / "dfpo" / "dev.jsonl"), PAIRS[:2])
    import json

    good = json.dumps(to_dict(PAIRS[0]), ensure_ascii=False)
    bad = to_dict(PAIRS[1])
    del bad["rejected"]
    (root / "dfpo" / "train.jsonl").write_text(
        good + "\n" + json.dumps(bad, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    write_manifest(str(root))  # sealed as a build would be: the record itself is what is wrong
    cfg = compose([f"data.root={root}"])
    assert len(sd.corpus_part(cfg.data, "preference", "dev")) == 2
    with pytest.raises(RecordError, match=r"dfpo/train\.jsonl:2: .*rejected"):
        sd.corpus_part(cfg.data, "preference", "train")


# -- the stage in a pipeline: what it logs -----------------------------------------------------------
def test_stage_logs_rewards_and_starts_at_ln2_plus_mu_nll(tmp_path_factory):
    from pedgpt.training.pipeline import run_pipeline

    mu = 2.0
    cfg = compose(
        [
            "+experiment=dfpo_demo",
            "trainer.max_steps=2",
            "trainer.log_every_n_steps=1",
            "trainer.val_check_interval=2",
            "trainer.limit_val_batches=2",
            "progress_bar=false",
            "logger=csv",
            f"paths.cache_dir={tmp_path_factory.mktemp('cache')}",
            "model.arch.hidden_size=32",
            "model.arch.intermediate_size=64",
            "model.arch.num_hidden_layers=1",
            f"dfpo.mu={mu}",
            "dfpo.batch_size=4",
        ]
    )
    run = tmp_path_factory.mktemp("run")
    report = run_pipeline(cfg, str(run))["dfpo"]
    assert report["reference_cache"] == "miss" and report["steps"] == 2
    for key in ("val_reward_accuracy", "val_reward_margin", "val_following_nll"):
        assert math.isfinite(report[key]), key
    rows = list(csv.DictReader(open(run / "dfpo" / "metrics.csv")))
    for split in ("train", "val"):
        for name in (
            "rewards/chosen",
            "rewards/rejected",
            "rewards/accuracies",
            "rewards/margins",
            "logps/chosen",
            "logps/rejected",
            "loss/preference",
            "loss/following",
        ):
            assert any(r.get(f"{split}/{name}") for r in rows), f"{split}/{name}"
    first = next(r for r in rows if r.get("train/loss") and r["step"] == "0")
    # policy == reference at step 0: the preference term is ln 2, the rewards are zero
    assert float(first["train/loss"]) == pytest.approx(
        math.log(2) + mu * float(first["train/loss/following"]), abs=1e-4
    )
    assert float(first["train/loss/preference"]) == pytest.approx(math.log(2), abs=1e-5)
    assert abs(float(first["train/rewards/margins"])) < 1e-5
