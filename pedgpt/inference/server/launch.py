"""Start the server for an export: load it, build the app, run uvicorn (the library behind ``pedgpt.serve``)."""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Sequence

import uvicorn

from pedgpt.inference.conversation import task_or_default
from pedgpt.inference.generation import GenerationSettings
from pedgpt.inference.server.app import create_app
from pedgpt.inference.server.limits import Limits
from pedgpt.models.exports import load_for_inference

DEFAULT_HOST = "127.0.0.1"


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve(
    model_dir: str,
    adapter_dir: str | None,
    *,
    host: str,
    port: int,
    limits: Limits,
    settings: GenerationSettings,
    task: str | None,
    api_key: str | None,
    model_name: str | None,
    device: str = "cpu",
    allowed_hosts: Sequence[str] = (),
) -> None:
    if not is_loopback(host):
        print(
            f"pedgpt.serve: listening on {host}: reachable from other machines"
            + ("" if api_key else " without an API key (set api_key=)"),
            file=sys.stderr,
        )
    loaded = load_for_inference(model_dir, adapter_dir, device=device)
    app = create_app(
        loaded,
        limits=limits,
        api_key=api_key,
        model_name=model_name,
        default_task=task_or_default(loaded, task),
        settings=settings,
        allowed_hosts=allowed_hosts,
    )
    print(f"pedgpt.serve: http://{host}:{port}/  (API: http://{host}:{port}/v1)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="info")
