"""The terminal chat loop: streamed answers, red-flag triage before the model, ``/reset`` ``/task`` ``/exit``."""

from __future__ import annotations

import sys
from typing import TextIO

from pedgpt.data.schema import TASKS, Message
from pedgpt.inference.conversation import trim_history
from pedgpt.inference.generation import GenerationSettings, stream_generate
from pedgpt.inference.safety import DISCLAIMER, triage
from pedgpt.models.exports import LoadedModel

HELP = "命令：/reset 新对话  /task 名称 切换任务（" + " ".join(TASKS) + "）  /exit 退出"


def emergency_text(message: str) -> str:
    bar = "!" * 60
    return f"{bar}\n{message}\n{bar}\n"


def chat_loop(
    loaded: LoadedModel,
    settings: GenerationSettings,
    *,
    task: str | None = None,
    system: str | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> None:
    """Read user lines from ``stdin`` until ``/exit`` or end of input; stream answers to ``stdout``."""
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout

    def say(text: str = "", end: str = "\n") -> None:
        stdout.write(text + end)
        stdout.flush()

    say(f"模型: {loaded.adapter_dir or loaded.model_dir}" + (f"  任务: {task}" if task else ""))
    say(f"提示: {DISCLAIMER}")
    say(HELP)
    history: list[Message] = []
    while True:
        say("你> ", end="")
        line = stdin.readline()
        if not line:
            say()
            return
        text = line.strip()
        if not text:
            continue
        if text.startswith("/"):
            cmd, _, arg = text.partition(" ")
            arg = arg.strip()
            if cmd in ("/exit", "/quit"):
                return
            if cmd == "/reset":
                history = []
                say("（已开始新对话）")
            elif cmd == "/task" and arg:
                if arg not in TASKS:
                    say(f"未知任务 {arg!r}；可选：{' '.join(TASKS)}")
                else:
                    task = arg
                    say(f"（任务：{task}）")
            elif cmd == "/task":
                say(f"当前任务：{task or '未设置'}；可选：{' '.join(TASKS)}")
            else:
                say(HELP)
            continue
        history.append(Message("user", text))
        verdict = triage(history)
        if verdict.urgent:
            say(emergency_text(verdict.message), end="")
        try:
            history, dropped = trim_history(loaded, history, system, settings.max_new_tokens)
        except ValueError as e:
            history.pop()
            say(f"（消息太长，未发送：{e}）")
            continue
        if dropped:
            say(f"（为适应上下文长度，已省略最早的 {dropped} 条消息）")
        say("助手> ", end="")
        answer = "".join(_echo(stream_generate(loaded, history, settings, system=system, task=task), stdout))
        say()
        history.append(Message("assistant", answer))


def _echo(deltas, stdout: TextIO):
    for delta in deltas:
        stdout.write(delta)
        stdout.flush()
        yield delta
