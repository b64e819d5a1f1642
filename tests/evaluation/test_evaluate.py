"""Evaluation suites on a tiny model: the CLI's files, multi-turn EviDiag, CMD departments, webMedQA skips,
cmmlu option log-likelihoods against a hand computation, preference reward accuracy."""

import json
import sys

import pytest
import torch

from pedgpt.data.schema import EvalItem, Message, PreferencePair
from pedgpt.data.templates import get_template
from pedgpt.evaluation import EvalContext
from pedgpt.inference.generation import GenerationSettings
from pedgpt.models.exports import LoadedModel

TEMPLATE = get_template("human_assistant")
CMD_CSV = """department,title,ask,answer
儿科,宝宝夜里咳嗽,两岁宝宝夜里咳得厉害，白天还好，怎么办？,夜间咳嗽可能与鼻涕倒流有关，睡前清理鼻腔，抬高枕头。
儿科,孩子不爱吃饭,四岁孩子最近不爱吃饭，人也瘦了。,先看看是否有零食过多，规律三餐，必要时查微量元素。
皮肤科,手上起小水疱,孩子手心出了几个小水疱，不痒。,注意是否伴发热和口腔疱疹，警惕手足口病，及时就诊。
"""


@pytest.fixture
def export_dir(tmp_path, tiny_llama, tiny_tokenizer):
    path = tmp_path / "export"
    tiny_llama(vocab=len(tiny_tokenizer)).save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture
def ctx(tiny_llama, tiny_tokenizer):
    lm = LoadedModel(tiny_llama(vocab=len(tiny_tokenizer)), tiny_tokenizer, TEMPLATE, "<memory>")
    return EvalContext(loaded=lm, settings=GenerationSettings(max_new_tokens=6), batch_size=4)


def read_rows(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_cli_writes_predictions_metrics_report_and_charts(export_dir, tmp_path, monkeypatch):
    from pedgpt import evaluate

    out = tmp_path / "run"
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "pedgpt.evaluate",
            f"model_dir={export_dir}",
            f"out_dir={out}",
            "suites=[medkqa,evidiag,preference,cmmlu_med]",
            "limit=4",
            "generation.max_new_tokens=5",
            f"hydra.run.dir={tmp_path / 'hydra'}",
        ],
    )
    evaluate.main()
    for name in ("predictions.jsonl", "metrics.json", "report.md", "generation_scores.png"):
        assert (out / name).exists(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["convention"].startswith("paper:")
    assert set(metrics["suites"]) == {"medkqa", "evidiag", "preference"}
    assert "cmmlu_med" in metrics["unavailable"]  # no demo data for it
    assert metrics["suites"]["medkqa"]["n"] == 4 and 0 <= metrics["suites"]["medkqa"]["gleu"] <= 100
    rows = read_rows(out / "predictions.jsonl")
    assert {r["suite"] for r in rows} == {"medkqa", "evidiag", "preference"}
    # multi-turn EviDiag: turn 2 is asked after the model's own turn-1 answer
    turn2 = [r for r in rows if r["suite"] == "evidiag" and r["turn"] == 2]
    assert turn2, "the demo dev set holds two-turn EviDiag items"
    first = {r["id"]: r for r in rows if r["suite"] == "evidiag" and r["turn"] == 1}
    for r in turn2:
        assert r["prompt"][1] == {"role": "assistant", "content": first[r["id"]]["prediction"]}
    assert "## Generation suites" in (out / "report.md").read_text()


def test_cmd_scores_per_department_with_chart(export_dir, tmp_path):
    from pedgpt.evaluation.run import evaluate_export

    csv = tmp_path / "cmd.csv"
    csv.write_text(CMD_CSV, encoding="gb18030")
    out = tmp_path / "run"
    summary = evaluate_export(export_dir, ["cmd"], None, str(out), cmd_file=str(csv), generation={"max_new_tokens": 5})
    m = summary["suites"]["cmd"]
    assert m["n"] == 3 and set(m["by_department"]) == {"儿科", "皮肤科"}
    rows = read_rows(out / "predictions.jsonl")
    peds = [r["scores"]["gleu"] for r in rows if r["department"] == "儿科"]
    assert m["by_department"]["儿科"]["gleu"] == pytest.approx(sum(peds) / len(peds), abs=1e-3)
    assert (out / "cmd_gleu_by_department.png").exists()


def test_webmedqa_skips_reference_free_items(ctx):
    from pedgpt.evaluation.generation_suites import run_generation_suite

    items = [
        EvalItem(
            [Message("user", "孩子发烧38度要吃药吗？")],
            "webmedqa",
            reference="先物理降温，观察精神。",
            task="consult",
            department="儿科",
        ),
        EvalItem([Message("user", "宝宝长湿疹怎么护理？")], "webmedqa", reference=None, task="consult"),
    ]
    res = run_generation_suite(ctx, "webmedqa", items)
    assert res.metrics["n"] == 1 and res.skipped == {"reference_free": 1}
    assert res.rows[0]["reference"] == "先物理降温，观察精神。"


def hand_loglik(model, prompt_ids, option_ids):
    """log p(option | prompt) from one plain forward and an explicit sum over the option's positions."""
    ids = torch.tensor([prompt_ids + option_ids])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(input_ids=ids).logits[0].double(), dim=-1)
    return sum(logprobs[len(prompt_ids) - 1 + k, t].item() for k, t in enumerate(option_ids))


def test_cmmlu_option_loglik_matches_hand_computation(ctx):
    from pedgpt.evaluation.multiple_choice import run_multiple_choice

    question = "以下是关于儿科学的单项选择题。\n\n手足口病最常见于哪个年龄段？\n答案："
    choices = ["五岁以下", "青少年", "老年人群体"]
    items = [
        EvalItem([Message("user", question)], "cmmlu_med", reference="A", subject="儿科学", choices=choices, answer=a)
        for a in (0, 1, 2)
    ]
    res = run_multiple_choice(ctx, "cmmlu_med", items)
    tok = ctx.loaded.tokenizer
    prompt = TEMPLATE.encode(tok, [Message("user", question)], add_generation_prompt=True)["input_ids"]
    expected = [hand_loglik(ctx.loaded.model, prompt, tok(c, add_special_tokens=False)["input_ids"]) for c in choices]
    assert res.rows[0]["loglik"] == pytest.approx(expected, abs=1e-4)
    best_raw = max(range(3), key=lambda i: expected[i])
    best_norm = max(range(3), key=lambda i: expected[i] / len(choices[i]))
    assert [r["pred_raw"] for r in res.rows] == [best_raw] * 3
    assert [r["pred_norm"] for r in res.rows] == [best_norm] * 3
    assert res.metrics["accuracy"] == pytest.approx(100 / 3) and res.metrics["primary"] == "accuracy"
    assert res.metrics["by_subject"]["儿科学"]["n"] == 3


PAIRS = [
    PreferencePair(
        [Message("user", "宝宝发烧了怎么办？")],
        chosen="先测量体温，多喝水，精神差要就医。",
        rejected="不用管。",
        task="medkqa",
    ),
    PreferencePair(
        [Message("user", "孩子咳嗽两天了")], chosen="观察有无发热和气促。", rejected="马上输液。", task="trerecom"
    ),
    PreferencePair(
        [Message("user", "手足口病传染吗？")], chosen="会传染，要居家隔离。", rejected="不会。", task="medkqa"
    ),
]


def answer_logp(model, tok, pair, answer):
    prompt = TEMPLATE.encode(tok, pair.prompt, add_generation_prompt=True)["input_ids"]
    ids = tok(answer, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    return hand_loglik(model, prompt, ids)


def test_preference_reward_accuracy_against_reference(ctx, tiny_llama, tiny_tokenizer):
    from pedgpt.evaluation.preference import run_preference

    ref = LoadedModel(tiny_llama(vocab=len(tiny_tokenizer), seed=1), tiny_tokenizer, TEMPLATE, "<ref>")
    ctx.reference = ref
    res = run_preference(ctx, "preference", PAIRS)
    tok, beta = tiny_tokenizer, ctx.beta
    hits = []
    for p in PAIRS:
        rc = answer_logp(ctx.loaded.model, tok, p, p.chosen) - answer_logp(ref.model, tok, p, p.chosen)
        rr = answer_logp(ctx.loaded.model, tok, p, p.rejected) - answer_logp(ref.model, tok, p, p.rejected)
        hits.append(beta * rc > beta * rr)
    assert res.metrics["reward_accuracy"] == pytest.approx(100 * sum(hits) / len(hits))
    assert [r["correct"] for r in res.rows] == hits
    assert res.metrics["n"] == 3 and set(res.metrics["by_task"]) == {"medkqa", "trerecom"}


def test_preference_with_fresh_adapter_has_zero_rewards(ctx):
    """A just-injected adapter (B = 0) equals its base, so against the adapters-off reference every reward is 0."""
    from pedgpt.adapters import inject_moe_lora
    from pedgpt.evaluation.preference import run_preference

    inject_moe_lora(ctx.loaded.model, ["q_proj"], rank=2, alpha=4, num_universal=1, num_specific=2, router="task")
    res = run_preference(ctx, "preference", PAIRS)
    assert res.metrics["reward_accuracy"] == 0.0 and res.metrics["reward_margin"] == 0.0
    assert "adapters disabled" in res.metrics["reference"]


@pytest.mark.parametrize(
    "override,pattern",
    [
        ("generation.batch_size=0", r"^generation\.batch_size: must be a whole number >= 1, got 0$"),
        ("generation.preset=creative", r"^generation\.preset: must be 'greedy' or 'paper', got 'creative'$"),
        ("generation.max_new_tokens=0", r"^generation\.max_new_tokens: must be a whole number >= 1 \(or null\)"),
        ("limit=0", r"^limit: must be a whole number >= 1 \(or null\), got 0$"),
        ("dtype=float8", r"^dtype: must be one of 'float32', 'bfloat16' or 'float16', got 'float8'$"),
        ("metrics.empty=drop", r"^metrics\.empty: must be 'zero' or 'skip_rouge', got 'drop'$"),
        ("cmmlu.primary=best", r"^cmmlu\.primary: must be 'raw' or 'norm', got 'best'$"),
        ("preference.beta=0", r"^preference\.beta: must be a number > 0, got 0"),
    ],
)
def test_a_bad_evaluation_setting_names_its_key_before_any_model_loads(tmp_path, override, pattern):
    from helpers import compose
    from pedgpt.common.errors import ConfigError
    from pedgpt.evaluation.run import run_evaluation

    cfg = compose([f"model_dir={tmp_path}/no-such-model", override], config_name="evaluate")
    with pytest.raises(ConfigError, match=pattern):  # not the missing model: the settings are checked first
        run_evaluation(cfg, str(tmp_path / "out"))
