"""Optional rewrite step: polish templated answers through any OpenAI-compatible chat endpoint.

The paper polishes its templated instructions with GPT-4; here any server speaking
``POST {base_url}/chat/completions`` works (OpenAI, vLLM, a local stub). Off by default
(``rewrite.enabled``); only the last assistant turn of instructions whose task is in ``rewrite.tasks`` is
rewritten, at temperature 0, and the record keeps its id and split (``meta.rewritten`` names the model).

A reply whose ``content`` is not a non-empty string (``null``, a number, an object, blank) never becomes an
answer: the record keeps its templated answer, counted under ``stats.rewrite`` (``kept_original:null_content``
…). URLs in messages are shown without credentials (:func:`redact_url`).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import MutableMapping, Sequence
from typing import Any

from pedgpt.data.schema import Instruction, Message, Record

SYSTEM = (
    "你是一名经验丰富的儿科医生。请在不改变任何医学事实、药物和数字的前提下，把下面的回答润色得通顺、"
    "完整、有同理心。只输出润色后的回答。"
)


class ReplyError(RuntimeError):
    """A well-formed reply without usable text; ``reason`` is its counter key."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def redact_url(url: str) -> str:
    """``url`` safe to print: ``user:password@`` removed and every query value replaced by ``***``."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc.rsplit("@", 1)[-1]
    if "@" in parts.netloc:
        netloc = "***@" + netloc
    query = "&".join(
        f"{k}=***" if v or "=" in pair else k
        for pair in parts.query.split("&")
        if pair
        for k, _, v in [pair.partition("=")]
    )
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def endpoint_url(base_url: str, path: str) -> str:
    """``path`` appended to the path of ``base_url`` (before its query string, if any)."""
    parts = urllib.parse.urlsplit(base_url)
    return urllib.parse.urlunsplit(parts._replace(path=parts.path.rstrip("/") + path))


def reply_text(payload: Any) -> str:
    """The first choice's content of a chat-completion reply; :class:`ReplyError` when it is not text."""
    content = payload["choices"][0]["message"]["content"]
    if content is None:
        raise ReplyError("null_content")
    if not isinstance(content, str):
        raise ReplyError("non_text_content")
    if not content.strip():
        raise ReplyError("empty_content")
    return content.strip()


def chat_completion(
    base_url: str, model: str, messages: list[dict[str, str]], api_key: str | None = None, timeout: float = 60.0
) -> str:
    """One chat completion; returns the first choice's content. Failures raise ``RuntimeError`` (one line,
    the URL without credentials); a reply without text raises :class:`ReplyError`."""
    url = endpoint_url(base_url, "/chat/completions")
    body = json.dumps({"model": model, "messages": messages, "temperature": 0}, ensure_ascii=False).encode("utf-8")
    headers = {"Content-Type": "application/json"}
    parts = urllib.parse.urlsplit(url)
    if parts.username is not None:  # user:password@ in the URL: HTTP basic auth (urllib does not do it itself)
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        headers["Authorization"] = f"Basic {token}"
        url = urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]))
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            payload = json.loads(resp.read().decode("utf-8"))
        return reply_text(payload)
    except ReplyError:
        raise
    except (urllib.error.URLError, OSError, KeyError, IndexError, TypeError, ValueError) as e:
        shown = redact_url(endpoint_url(base_url, "/chat/completions"))
        detail = str(e).replace(url, shown).replace(base_url, redact_url(base_url))
        raise RuntimeError(f"rewrite: POST {shown} failed ({type(e).__name__}: {detail})") from None


def rewrite_records(
    records: Sequence[Record], cfg: Any, counts: MutableMapping[str, int] | None = None
) -> list[Record]:
    """A copy of ``records`` with the answers of ``cfg.tasks`` instructions rewritten by ``cfg.model``.

    ``counts`` receives ``rewritten`` and ``kept_original:<reason>`` for replies without text."""
    counts = counts if counts is not None else {}
    for key in ("base_url", "model"):
        if not cfg.get(key):
            raise ValueError(f"rewrite.{key} must be set when rewrite.enabled=true")
    api_key = os.environ.get(cfg.get("api_key_env") or "", None)
    out: list[Record] = []
    for r in records:
        if isinstance(r, Instruction) and r.task in cfg.tasks:
            prompt = "\n".join(f"{m.role}: {m.content}" for m in r.messages[:-1])
            try:
                text = chat_completion(
                    cfg.base_url,
                    cfg.model,
                    [
                        {"role": "system", "content": SYSTEM},
                        {"role": "user", "content": f"对话：\n{prompt}\n\n原回答：\n{r.response}"},
                    ],
                    api_key=api_key,
                    timeout=float(cfg.get("timeout_s", 60)),
                )
            except ReplyError as e:
                key = f"kept_original:{e.reason}"
                counts[key] = counts.get(key, 0) + 1
            else:
                counts["rewritten"] = counts.get("rewritten", 0) + 1
                r = dataclasses.replace(
                    r,
                    messages=r.messages[:-1] + [Message("assistant", text)],
                    meta={**r.meta, "rewritten": str(cfg.model)},
                )
        out.append(r)
    return out
