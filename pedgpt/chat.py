"""Talk to a trained export in the terminal, with streamed answers and red-flag triage first.

    python -m pedgpt.chat [model=DIR] [adapter=DIR] [task=consult] [system=TEXT] [preset=NAME]
                          [max_new_tokens=N] [temperature=T] [top_p=P] [seed=S] [device=cpu]

Without ``model=`` the newest demo run under ``outputs/`` (``output_root=``) is used, and named. Every user
message is triaged (:func:`pedgpt.inference.safety.triage`, over the whole conversation) before the model runs: an
urgent one prints the emergency guidance before any model text. The history is trimmed to the context
length (the model's position limit minus ``max_new_tokens``) by dropping the oldest turns.
Commands: ``/reset`` (new conversation), ``/task NAME`` (routing task for a MoE-LoRA adapter), ``/exit``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pedgpt.common.errors import PedgptError
from pedgpt.config.cli import ToolParser
from pedgpt.inference.chat import chat_loop
from pedgpt.inference.conversation import (
    SETTING_KEYS,
    add_model_options,
    check_task,
    resolve_model,
    settings_from,
    task_or_default,
)
from pedgpt.models.exports import load_for_inference


def parser() -> ToolParser:
    p = ToolParser("python -m pedgpt.chat", __doc__)
    add_model_options(p, "paper")
    p.option("system", help="system prompt")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parser().parse(argv)
        settings = settings_from(args.preset, **{k: getattr(args, k) for k in SETTING_KEYS})
        task = check_task(args.task)
        model_dir, adapter_dir = resolve_model(args.model, args.adapter, args.output_root, print)
        loaded = load_for_inference(model_dir, adapter_dir, device=args.device)
    except PedgptError as e:
        print(f"pedgpt.chat: {e}", file=sys.stderr)
        return 2
    chat_loop(loaded, settings, task=task_or_default(loaded, task), system=args.system)
    return 0


if __name__ == "__main__":
    sys.exit(main())
