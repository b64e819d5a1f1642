"""Reading a request body under a size limit, before any of it is parsed.

A declared ``Content-Length`` over the limit is refused without reading a byte; a body without one (chunked)
is read chunk by chunk and refused as soon as the running count passes the limit. Either way the answer is
413 with an OpenAI error body naming the limit, and nothing beyond the limit is kept in memory.
"""

from __future__ import annotations

from fastapi import Request

from pedgpt.inference.server.errors import APIError


def _too_large(size: str, limit: int) -> APIError:
    return APIError(
        413,
        f"request body: {size} bytes, over the limit of {limit} (max_body_bytes)",
        param="body",
        code="request_too_large",
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, at most ``limit`` bytes; :class:`APIError` 413 ``request_too_large`` beyond that."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(declared, limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(f"more than {limit}", limit)
        chunks.append(chunk)
    return b"".join(chunks)
