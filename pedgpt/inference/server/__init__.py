"""The local chat server: a web page and an OpenAI-compatible API over one generation worker.

Run it with ``python -m pedgpt.serve``; build the app in-process with :func:`create_app`.
"""

from pedgpt.inference.server.app import create_app
from pedgpt.inference.server.limits import Limits

__all__ = ["create_app", "Limits"]
