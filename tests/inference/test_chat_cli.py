"""The terminal chat: scripted stdin through the real loop and model, the commands, triage first, trimming."""

import io
import json
import sys
from dataclasses import replace

import pytest
import torch

from helpers.talk_model import CONTEXT, COUGH, GREETING, LONG, train_chat_model
from pedgpt import chat
from pedgpt.common.errors import UsageError
from pedgpt.data.schema import Message
from pedgpt.inference import conversation
from pedgpt.inference.chat import chat_loop
from pedgpt.inference.generation import PRESETS
from pedgpt.inference.safety import triage

URGENT = "孩子8个月，刚才突然抽搐，叫不醒"
GREEDY = replace(PRESETS["greedy"], max_new_tokens=40)


@pytest.fixture(scope="module")
def loaded():
    torch.set_num_threads(1)
    return train_chat_model()


def run(loaded, script, settings=GREEDY, **kw):
    out = io.StringIO()
    chat_loop(loaded, settings, stdin=io.StringIO(script), stdout=out, **kw)
    return out.getvalue()


def test_streams_answers_and_handles_commands(loaded):
    script = "\n".join(
        [GREETING[0], "/task medkqa", "/task surgery", "/task", "/reset", COUGH[0], "/exit", GREETING[0]]
    )
    out = run(loaded, script + "\n")
    assert "\ufffd" not in out
    assert out.count(GREETING[1]) == 1  # the line after /exit is never read
    assert f"助手> {COUGH[1]}\n" in out
    assert "（任务：medkqa）" in out and "未知任务 'surgery'" in out and "当前任务：medkqa" in out
    assert "（已开始新对话）" in out
    assert out.index(GREETING[1]) < out.index("（已开始新对话）") < out.index(COUGH[1])


def test_streaming_writes_piece_by_piece(loaded):
    class Recorder(io.StringIO):
        def __init__(self):
            super().__init__()
            self.writes = []

        def write(self, s):
            self.writes.append(s)
            return super().write(s)

    out = Recorder()
    chat_loop(loaded, GREEDY, stdin=io.StringIO(GREETING[0] + "\n"), stdout=out)
    start = out.writes.index("助手> ")
    pieces = out.writes[start + 1 : out.writes.index("\n", start)]
    assert len(pieces) > 3 and "".join(pieces) == GREETING[1]
    assert not any("\ufffd" in p for p in pieces)


def test_urgent_message_prints_guidance_before_model_text(loaded):
    out = run(loaded, f"{GREETING[0]}\n{URGENT}\n")
    guidance = triage(URGENT).message
    assert guidance and "120" in guidance
    _, benign, urgent, _ = out.split("你> ")  # banner, the two turns, the prompt at end of input
    assert "120" not in benign and GREETING[1] in benign
    assert urgent.index(guidance) < urgent.index("助手> ")


def test_age_from_an_earlier_turn_counts(loaded):
    _, first, second, _ = run(loaded, "我家宝宝2个月大\n她今天发烧38.5度\n").split("你> ")
    assert "120" not in first
    assert second.index("拨打120") < second.index("助手> ")


def test_history_trimmed_to_the_context(loaded):
    u = [
        Message("user", "哈" * 100),
        Message("assistant", "好的"),
        Message("user", "哈" * 100),
        Message("assistant", "好的"),
        Message("user", COUGH[0]),
    ]
    need_last_two_turns = len(loaded.template.encode(loaded.tokenizer, u[2:], add_generation_prompt=True)["input_ids"])
    kept, dropped = conversation.trim_history(loaded, u, None, CONTEXT - need_last_two_turns)
    assert (kept, dropped) == (u[2:], 2)
    kept, dropped = conversation.trim_history(loaded, u, None, CONTEXT - need_last_two_turns + 1)
    assert (kept, dropped) == (u[4:], 4)
    assert conversation.trim_history(loaded, u, None, 10) == (u, 0)
    with pytest.raises(ValueError, match="context holds 1024"):
        conversation.trim_history(loaded, u, None, CONTEXT - 5)


def test_loop_drops_oldest_turns_when_the_context_fills(loaded):
    three = [Message("user", GREETING[0]), Message("assistant", GREETING[1]), Message("user", COUGH[0])]
    need = len(loaded.template.encode(loaded.tokenizer, three, add_generation_prompt=True)["input_ids"])
    settings = replace(GREEDY, max_new_tokens=CONTEXT - need + 1)  # the second turn does not fit with the first
    out = run(loaded, f"{GREETING[0]}\n{COUGH[0]}\n", settings=settings)
    assert "已省略最早的 2 条消息" in out and f"助手> {COUGH[1]}\n" in out
    too_long = run(loaded, "哈" * 300 + "\n", settings=settings)
    assert "消息太长，未发送" in too_long and "助手> " not in too_long


def test_context_length_reads_the_model_config(loaded):
    assert conversation.context_length(loaded) == CONTEXT


def test_parse_args():
    args = chat.parser().parse(["model=/m", "--task", "consult", "--top_p=0.5", "max-new-tokens=7"])
    assert (args.model, args.task, args.top_p, args.max_new_tokens) == ("/m", "consult", 0.5, 7)
    with pytest.raises(UsageError, match="unrecognized arguments: modle=/m"):
        chat.parser().parse(["modle=/m"])
    with pytest.raises(UsageError, match="unrecognized arguments: /m"):
        chat.parser().parse(["/m"])
    with pytest.raises(UsageError, match="argument --seed: invalid int value: 'x'"):
        chat.parser().parse(["seed=x"])
    s = conversation.settings_from("paper", temperature=0.0, max_new_tokens=7, top_p=None)
    assert (s.do_sample, s.max_new_tokens, s.top_p) == (False, 7, PRESETS["paper"].top_p)
    with pytest.raises(UsageError, match="preset='fast'"):
        conversation.settings_from("fast")


def _export(loaded, root):
    export = root / "run" / "sft" / "export"
    loaded.model.save_pretrained(export)
    loaded.tokenizer.save_pretrained(export)
    (root / "run" / "report.json").write_text(json.dumps({"pipeline": ["sft"], "sft": {"export_dir": str(export)}}))
    return export


def test_main_without_model_uses_the_newest_run(loaded, tmp_path, monkeypatch, capsys):
    export = _export(loaded, tmp_path)
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{COUGH[0]}\n/exit\n"))
    assert chat.main([f"output_root={tmp_path}", "preset=greedy", "max_new_tokens=60"]) == 0
    out = capsys.readouterr().out
    assert f"using the newest run's export: {export}" in out
    assert f"助手> {COUGH[1]}\n" in out


def test_main_reports_a_missing_run(tmp_path, capsys):
    assert chat.main([f"output_root={tmp_path}"]) == 2
    assert "no finished pipeline run" in capsys.readouterr().err
    assert chat.main(["task=surgery", "model=x"]) == 2
    assert "argument --task: invalid choice: 'surgery'" in capsys.readouterr().err


def test_long_answer_streams_without_replacement_characters(loaded):
    out = run(loaded, LONG[0] + "\n", settings=replace(GREEDY, max_new_tokens=500))
    assert LONG[1] in out and "\ufffd" not in out
