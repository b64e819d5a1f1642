"""Durable file writes and content hashes: atomic replace with fsync, and a memoised sha256 of large files."""

from __future__ import annotations

import hashlib
import json
import os


def fsync_path(path: str) -> None:
    """fsync a file, or every file under a directory and the directory itself."""
    if os.path.isdir(path):
        for root, _, files in os.walk(path):
            for f in files:
                fsync_path(os.path.join(root, f))
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, fsync, then ``os.replace``."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def file_sha256(path: str, cache_dir: str | None = None) -> str:
    """sha256 of a file, memoised under ``cache_dir`` keyed by path, size and mtime (large checkpoints hash
    once); nothing is written next to the file itself."""
    st = os.stat(path)
    key = {"path": os.path.abspath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    side = None
    if cache_dir:
        name = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()
        side = os.path.join(cache_dir, "file_hashes", f"{name}.json")
    try:
        if side:
            with open(side) as f:
                memo = json.load(f)
            if memo.get("key") == key:
                return memo["sha256"]
    except (OSError, ValueError):
        pass
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            h.update(block)
    digest = h.hexdigest()
    if side:
        try:
            os.makedirs(os.path.dirname(side), exist_ok=True)
            tmp = f"{side}.tmp{os.getpid()}"
            with open(tmp, "w") as f:
                json.dump({"key": key, "sha256": digest}, f)
            os.replace(tmp, side)
        except OSError:
            pass
    return digest
