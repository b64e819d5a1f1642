"""Pairwise judge: verdict parsing, both-order combination, and the HTTP backend against a local server."""

import json
import re

import pytest

from helpers.stub_openai import ChatStub, serving
from pedgpt.evaluation.judging.verdict import combine, parse_verdict
from pedgpt.judge import main

SECRET = "sk-test-never-log-me-4242"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("理由……\n[[A]]", "A"),
        ("先写[[A]]，再想想，最终 [[B]]", "B"),
        ("[[tie]]", "C"),
        ("[[ C ]]", "C"),
        ("综合来看，回答B更好。", "B"),
        ("Answer A is better overall.", "A"),
        ("结论：A", "A"),
        ("两者不相上下。", "C"),
        ("I cannot decide.", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_verdict(text, expected):
    assert parse_verdict(text) == expected


def test_combine_counts_disagreement_as_tie():
    assert combine("A", "B") == "win" and combine("B", "A") == "lose"
    assert combine("A", "A") == "tie"  # position bias: the two orders disagree
    assert combine("C", "B") == "tie" and combine(None, "A") is None


class Judge(ChatStub):
    """Prefers the longer answer; "[[A]]" whatever the answers when the question says 偏心; free text on "???"."""

    def reply(self, body):
        prompt = body["messages"][0]["content"]
        a = re.search(r"\[回答A\]\n(.*?)\n\n\[回答B\]", prompt, re.S).group(1)
        b = re.search(r"\[回答B\]\n(.*?)\n$", prompt, re.S).group(1)
        if "???" in a + b:
            return "这个问题我没法判断。"
        if "偏心" in prompt:
            return "[[A]]"
        return "回答A更好" if len(a) > len(b) else "最终：[[B]]" if len(b) > len(a) else "两者相当，平局"


@pytest.fixture
def server():
    with serving(Judge) as url:
        yield url


def write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def row(i, task, pred, question="孩子发烧怎么办？"):
    return {
        "suite": task,
        "id": str(i),
        "turn": None,
        "task": task,
        "prediction": pred,
        "prompt": [{"role": "user", "content": question}],
        "reference": "先测体温。",
    }


def test_http_judge_win_tie_lose_per_task(server, tmp_path, monkeypatch, capsys):
    a = [
        row(1, "medkqa", "先测量体温，多喝水，精神差及时就医。"),
        row(2, "medkqa", "多喝水。"),
        row(3, "trerecom", "观察。"),
        row(4, "trerecom", "???"),
        row(5, "medkqa", "好", "偏心的问题"),
        {"suite": "cmmlu_med", "id": "9", "prediction": "A", "choices": ["A", "B"], "prompt": "x"},
    ]
    b = [
        row(1, "medkqa", "多喝水。"),
        row(2, "medkqa", "多休息。"),
        row(3, "trerecom", "先物理降温再观察。"),
        row(4, "trerecom", "多喝水。"),
        row(5, "medkqa", "也好", "偏心的问题"),
        row(6, "medkqa", "只在B里"),
    ]
    write(tmp_path / "A.jsonl", a)
    write(tmp_path / "B.jsonl", b)
    monkeypatch.setenv("PEDGPT_JUDGE_API_KEY", SECRET)
    Judge.seen = []
    out = tmp_path / "out"
    rc = main(
        [
            str(tmp_path / "A.jsonl"),
            str(tmp_path / "B.jsonl"),
            "--backend",
            "http",
            "--base-url",
            server,
            "--model",
            "judge-1",
            "--out",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert rc == 0
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert result["by_task"]["medkqa"] == {**result["by_task"]["medkqa"], "win": 1, "tie": 2, "lose": 0, "n": 3}
    assert result["by_task"]["trerecom"] == {
        **result["by_task"]["trerecom"],
        "win": 0,
        "tie": 0,
        "lose": 1,
        "unparseable": 1,
        "n": 2,
    }
    assert result["unparseable"] == 1 and result["win_rate"] == pytest.approx(25.0)
    assert [r["auth"] for r in Judge.seen] == [f"Bearer {SECRET}"] * 10  # 5 pairs × 2 orders; the cmmlu row is ignored
    assert (out / "judge_win_tie_lose.png").exists()
    written = "".join(p.read_text(errors="ignore") for p in out.iterdir() if p.suffix in (".json", ".jsonl"))
    assert SECRET not in written + captured.out + captured.err


def test_http_judge_error_names_endpoint_not_key(tmp_path, monkeypatch, capsys):
    write(tmp_path / "A.jsonl", [row(1, "medkqa", "甲")])
    write(tmp_path / "B.jsonl", [row(1, "medkqa", "乙")])
    monkeypatch.setenv("MY_KEY", SECRET)
    rc = main(
        [
            str(tmp_path / "A.jsonl"),
            str(tmp_path / "B.jsonl"),
            "--base-url",
            "http://127.0.0.1:9/v1",
            "--model",
            "m",
            "--api-key-env",
            "MY_KEY",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "127.0.0.1:9" in err and SECRET not in err


def test_hf_backend_runs_a_local_export(tmp_path, tiny_tokenizer, capsys):
    """A random tiny model judges (its replies are rarely readable verdicts; those are counted)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    export = tmp_path / "judge_model"
    cfg = LlamaConfig(
        vocab_size=len(tiny_tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=4096,
    )
    LlamaForCausalLM(cfg).save_pretrained(export)
    tiny_tokenizer.save_pretrained(export)
    write(tmp_path / "A.jsonl", [row(1, "medkqa", "甲"), row(2, "evidiag", "丙")])
    write(tmp_path / "B.jsonl", [row(1, "medkqa", "乙"), row(2, "evidiag", "丁")])
    rc = main(
        [
            str(tmp_path / "A.jsonl"),
            str(tmp_path / "B.jsonl"),
            "--backend",
            "hf",
            "--model",
            str(export),
            "--max-tokens",
            "4",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and result["judge"]["backend"] == "hf"
    assert result["n"] == 2 and result["win"] + result["tie"] + result["lose"] + result["unparseable"] == 2
    replies = [json.loads(line) for line in (tmp_path / "o" / "judgments.jsonl").read_text().splitlines()]
    assert all(r["reply_a_first"] and r["reply_b_first"] for r in replies)  # the model did answer
