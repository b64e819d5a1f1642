"""Serve a trained export: a chat web page and an OpenAI-compatible API, on 127.0.0.1 by default.

    python -m pedgpt.serve [model=DIR] [adapter=DIR] [task=consult] [port=8000] [--host HOST]
                           [api_key=KEY] [preset=greedy] [max_new_tokens=N] [max_message_chars=N]
                           [max_turns=N] [max_pending=N] [max_body_bytes=N] [allowed_hosts=NAME,...]
                           [device=cpu]

Without ``model=`` the newest demo run under ``outputs/`` is served (and named). Other machines can reach
the server only when ``--host`` (or ``host=``) names a non-loopback address. ``api_key=`` (or the
``PEDGPT_API_KEY`` environment variable) makes ``/v1/*`` require ``Authorization: Bearer KEY``.
``max_new_tokens`` is the per-request cap on ``max_tokens``; ``preset`` gives the default sampling settings.
``max_turns`` counts every message (system included); ``max_body_bytes`` caps a request body before it is
parsed (413). Without an API key only requests whose ``Host`` names this server are answered (localhost, a
loopback address, the address it listens on); ``allowed_hosts=`` adds names (e.g. behind a proxy).

    curl http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' \\
         -d '{"model": "pedgpt", "messages": [{"role": "user", "content": "宝宝咳嗽怎么办？"}]}'
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from pedgpt.common.errors import PedgptError
from pedgpt.config.cli import ToolParser
from pedgpt.inference.conversation import SETTING_KEYS, add_model_options, check_task, resolve_model, settings_from
from pedgpt.inference.server.launch import DEFAULT_HOST, serve
from pedgpt.inference.server.limits import Limits

LIMIT_KEYS = ("max_message_chars", "max_turns", "max_new_tokens", "max_pending", "max_body_bytes")


def parser() -> ToolParser:
    p = ToolParser("python -m pedgpt.serve", __doc__)
    add_model_options(p, "greedy")
    p.option("host", default=DEFAULT_HOST)
    p.option("port", type=int, default=8000)
    p.option("api_key", help="require `Authorization: Bearer KEY` on /v1/* (or set PEDGPT_API_KEY)")
    p.option("model_name", help="the model name the API reports")
    p.option("max_message_chars", type=int)
    p.option("max_turns", type=int)
    p.option("max_pending", type=int)
    p.option("max_body_bytes", type=int, help="largest request body in bytes, refused before parsing (413)")
    p.option("allowed_hosts", default="", help="comma-separated extra Host names accepted without an API key")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parser().parse(argv)
        defaults = Limits()
        limits = Limits(
            **{k: getattr(args, k) if getattr(args, k) is not None else getattr(defaults, k) for k in LIMIT_KEYS}
        )
        # max_new_tokens is the per-request cap on max_tokens here, not a sampling setting
        settings = settings_from(args.preset, **{k: getattr(args, k) for k in SETTING_KEYS if k != "max_new_tokens"})
        task = check_task(args.task)
        model_dir, adapter_dir = resolve_model(args.model, args.adapter, args.output_root, print)
    except (PedgptError, ValueError) as e:
        print(f"pedgpt.serve: {e}", file=sys.stderr)
        return 2
    serve(
        model_dir,
        adapter_dir,
        host=args.host,
        port=args.port,
        limits=limits,
        settings=settings,
        task=task,
        api_key=args.api_key or os.environ.get("PEDGPT_API_KEY") or None,
        model_name=args.model_name,
        device=args.device,
        allowed_hosts=[h.strip() for h in args.allowed_hosts.split(",") if h.strip()],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
