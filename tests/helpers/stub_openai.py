"""A tiny OpenAI-compatible chat-completions server on 127.0.0.1 for tests (stdlib http.server)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ChatStub(BaseHTTPRequestHandler):
    """Subclass and implement ``reply(body) -> str``; requests are recorded in ``seen``."""

    seen: list[dict] = []

    def reply(self, body: dict) -> str:
        raise NotImplementedError

    def do_POST(self):  # noqa: N802 (http.server API)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        data = json.dumps(
            {"choices": [{"message": {"role": "assistant", "content": self.reply(body)}}]}, ensure_ascii=False
        ).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serving(handler: type[ChatStub]) -> Iterator[str]:
    """Run ``handler`` on a free loopback port; yields the base URL (``http://127.0.0.1:PORT/v1``)."""
    handler.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    finally:
        httpd.shutdown()
        httpd.server_close()
