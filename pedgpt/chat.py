"""Talk to a trained export in the terminal, with streamed answers and red-flag triage first.

    python -m pedgpt.chat [model=DIR] [adapter=DIR] [task=consult] [system=TEXT] [preset=NAME]
                          [max_new_tokens=N] [temperature=T] [top_p=P] [seed=S] [device=cpu]

Without ``model=`` the newest demo run under ``outputs/`` (``output_root=``) is used, and named. Every user
message is triaged (:func:`pedgpt.safety.triage`, over the whole conversation) before the model runs: an
urgent one prints the emergency guidance before any model text. The history is trimmed to the context
length (the model's position limit minus ``max_new_tokens``) by dropping the oldest turns.
Commands: ``/reset`` (new conversation), ``/task NAME`` (routing task for a MoE-LoRA adapter), ``/exit``.
"""
from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any, Callable, TextIO

from pedgpt.cli import UsageError, number, parse_args
from pedgpt.data.schema import TASKS, Message
from pedgpt.generation import PRESETS, GenerationSettings, stream_generate
from pedgpt.models.export import LoadedModel, load_for_inference, newest_run_export
from pedgpt.safety import DISCLAIMER, triage

_SETTING_KEYS = ("max_new_tokens", "temperature", "top_p", "top_k", "seed", "repetition_penalty")
CHAT_KEYS = ("model", "adapter", "task", "system", "preset", "device", "output_root") + _SETTING_KEYS
DEFAULT_TASK = "consult"
HELP = "命令：/reset 新对话  /task 名称 切换任务（" + " ".join(TASKS) + "）  /exit 退出"


def settings_from_args(args: dict[str, str], default_preset: str) -> GenerationSettings:
    """A preset (``preset=``, else ``default_preset``) with any of the sampling keys overridden."""
    name = args.get("preset", default_preset)
    if name not in PRESETS:
        raise UsageError(f"preset={name!r}: known presets: {', '.join(PRESETS)}")
    kinds = {"max_new_tokens": int, "top_k": int, "seed": int}
    changes = {k: number(args, k, kinds.get(k, float)) for k in _SETTING_KEYS if k in args}
    if "temperature" in changes:  # 0 means greedy, as in the OpenAI API
        changes["do_sample"] = changes["temperature"] > 0
        if not changes["do_sample"]:
            del changes["temperature"]
    return replace(PRESETS[name], **changes)


def check_task(task: str | None) -> str | None:
    if task is not None and task not in TASKS:
        raise UsageError(f"task={task!r}: known tasks: {', '.join(TASKS)}")
    return task


def task_or_default(loaded: LoadedModel, task: str | None) -> str | None:
    """``task``, or ``consult`` when the adapter's router cannot run without a task id."""
    from pedgpt.adapters import adapter_modules

    needs = any(m.router is not None and m.router.needs_task_ids(False) for _, m in adapter_modules(loaded.model))
    return task if task is not None or not needs else DEFAULT_TASK


def resolve_model(args: dict[str, str], say: Callable[[str], None]) -> tuple[str, str | None]:
    """(model_dir, adapter_dir) from ``model=``/``adapter=``, else the newest demo run's final export."""
    if "model" in args:
        return args["model"], args.get("adapter")
    root = args.get("output_root", "outputs")
    found = newest_run_export(root)
    if found is None:
        raise UsageError(f"no model= given and no finished pipeline run under {root}/: train one with "
                         f"`python -m pedgpt.train` or pass model=DIR")
    say(f"model= not given; using the newest run's export: {found}")
    return found, args.get("adapter")


# -- context -----------------------------------------------------------------------------------------
def context_length(loaded: LoadedModel) -> int:
    """Tokens the model can attend to: its position limit, or the tokenizer's if that is smaller."""
    cfg = loaded.model.config
    limits = [getattr(cfg, k) for k in ("max_position_embeddings", "n_positions", "seq_length", "model_max_length")
              if isinstance(getattr(cfg, k, None), int)]
    tok_max = getattr(loaded.tokenizer, "model_max_length", None)
    if isinstance(tok_max, int) and tok_max < 10**7:
        limits.append(tok_max)
    if not limits:
        raise ValueError(f"{loaded.model_dir}: config has no max_position_embeddings; cannot size the context")
    return min(limits)


def prompt_tokens(loaded: LoadedModel, messages: list[Message], system: str | None) -> int:
    enc = loaded.template.encode(loaded.tokenizer, messages, system, add_generation_prompt=True)
    return len(enc["input_ids"])


def trim_history(loaded: LoadedModel, messages: list[Message], system: str | None,
                 max_new_tokens: int) -> tuple[list[Message], int]:
    """Drop the oldest turns until the prompt plus ``max_new_tokens`` fits the context.

    ``messages`` alternate user/assistant and end with a user turn. Returns (kept messages, number dropped);
    raises ``ValueError`` when even the last user message alone does not fit.
    """
    budget = context_length(loaded) - max_new_tokens
    kept = list(messages)
    while prompt_tokens(loaded, kept, system) > budget:
        if len(kept) <= 1:
            raise ValueError(f"the message needs {prompt_tokens(loaded, kept, system)} prompt tokens; the "
                             f"context holds {context_length(loaded)} including {max_new_tokens} new tokens")
        kept = kept[2:]  # the oldest user turn and its answer
    return kept, len(messages) - len(kept)


# -- the loop ----------------------------------------------------------------------------------------
def emergency_text(message: str) -> str:
    bar = "!" * 60
    return f"{bar}\n{message}\n{bar}\n"


def chat_loop(loaded: LoadedModel, settings: GenerationSettings, *, task: str | None = None,
              system: str | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None) -> None:
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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parse_args(argv, CHAT_KEYS)
        settings = settings_from_args(args, "paper")
        task = check_task(args.get("task"))
        model_dir, adapter_dir = resolve_model(args, print)
    except (UsageError, ValueError) as e:
        print(f"pedgpt.chat: {e}", file=sys.stderr)
        return 2
    loaded = load_for_inference(model_dir, adapter_dir, device=args.get("device", "cpu"))
    chat_loop(loaded, settings, task=task_or_default(loaded, task), system=args.get("system"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
