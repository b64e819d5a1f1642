"""Serve a trained export: a chat web page and an OpenAI-compatible API, on 127.0.0.1 by default.

    python -m pedgpt.serve [model=DIR] [adapter=DIR] [task=consult] [port=8000] [--host HOST]
                           [api_key=KEY] [preset=greedy] [max_new_tokens=N] [max_message_chars=N]
                           [max_turns=N] [max_pending=N] [device=cpu]

Without ``model=`` the newest demo run under ``outputs/`` is served (and named). Other machines can reach
the server only when ``--host`` (or ``host=``) names a non-loopback address. ``api_key=`` (or the
``PEDGPT_API_KEY`` environment variable) makes ``/v1/*`` require ``Authorization: Bearer KEY``.
``max_new_tokens`` is the per-request cap on ``max_tokens``; ``preset`` gives the default sampling settings.

    curl http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' \\
         -d '{"model": "pedgpt", "messages": [{"role": "user", "content": "宝宝咳嗽怎么办？"}]}'
"""
from __future__ import annotations

import ipaddress
import os
import sys

from pedgpt.cli import UsageError, number, parse_args
from pedgpt.chat import (check_task, resolve_model, settings_from_args,
                         task_or_default)

SERVE_KEYS = ("model", "adapter", "task", "host", "port", "api_key", "preset", "device", "output_root",
              "model_name", "max_new_tokens", "max_message_chars", "max_turns", "max_pending")
DEFAULT_HOST = "127.0.0.1"


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    from pedgpt.models.export import load_for_inference
    from pedgpt.server import Limits, create_app

    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parse_args(argv, SERVE_KEYS)
        defaults = Limits()
        limits = Limits(**{k: number(args, k, int) if k in args else getattr(defaults, k)
                           for k in ("max_message_chars", "max_turns", "max_new_tokens", "max_pending")})
        settings = settings_from_args({k: v for k, v in args.items() if k != "max_new_tokens"}, "greedy")
        task = check_task(args.get("task"))
        port = number(args, "port", int) if "port" in args else 8000
        model_dir, adapter_dir = resolve_model(args, print)
    except (UsageError, ValueError) as e:
        print(f"pedgpt.serve: {e}", file=sys.stderr)
        return 2
    host = args.get("host", DEFAULT_HOST)
    api_key = args.get("api_key") or os.environ.get("PEDGPT_API_KEY") or None
    if not is_loopback(host):
        print(f"pedgpt.serve: listening on {host}: reachable from other machines"
              + ("" if api_key else " without an API key (set api_key=)"), file=sys.stderr)
    loaded = load_for_inference(model_dir, adapter_dir, device=args.get("device", "cpu"))
    app = create_app(loaded, limits=limits, api_key=api_key, model_name=args.get("model_name"),
                     default_task=task_or_default(loaded, task), settings=settings)
    print(f"pedgpt.serve: http://{host}:{port}/  (API: http://{host}:{port}/v1)")
    uvicorn.run(app, host=host, port=port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
