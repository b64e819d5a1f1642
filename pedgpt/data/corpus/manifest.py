"""The manifest of a PedCorpus build (``manifest.json``) and its verification by every reader.

A build is complete only when it has a manifest: the builder writes it last, inside the temporary build
directory, before renaming that directory into place (:mod:`pedgpt.data.corpus.publish`). Format::

    {"format": "pedcorpus-manifest/1",
     "files": {"sft/train.jsonl": {"bytes": 123, "records": 4, "sha256": "…"}, "stats.json": {"bytes": …,
               "sha256": "…"}, …},                       # every file of the build but .hydra/ and the manifest
     "settings": {…},                                    # the build's resolved configuration
     "sources": {"dir": "…", "files": {"qa/a.jsonl": {"bytes": …, "sha256": "…"}, …}, "sha256": "…"}}

``records`` (JSONL files only) is the number of lines: the writer puts one record on each line.

:func:`verify_corpus` is what training (``data.root``) and evaluation (``data_root``) call when they open a
corpus. The cheap check compares every listed file's size and record count with the manifest; the sha256 is
compared too with ``full=True``, and for any file modified after the manifest was written (same size, new
content). Any difference is a :class:`CorpusError` with one line naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

from pedgpt.common.errors import DataError

MANIFEST = "manifest.json"
FORMAT = "pedcorpus-manifest/1"
REBUILD = "rebuild it with `python -m pedgpt.data.build source_dir=... out_dir={root}`"
_CHUNK = 1 << 20


class CorpusError(DataError):
    """A PedCorpus directory that is not a complete, unchanged build; the message is one line."""


# --- writing -----------------------------------------------------------------------------------------
def file_digest(path: str) -> tuple[int, str, int]:
    """``(bytes, sha256 hex, newline count)`` of one file, read in 1 MiB chunks."""
    h, size, lines = hashlib.sha256(), 0, 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
            lines += chunk.count(b"\n")
    return size, h.hexdigest(), lines


def count_lines(path: str) -> int:
    """Newlines in a file, read in 16 MiB chunks (a few hundred MB per second)."""
    lines = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            lines += chunk.count(b"\n")
    return lines


def listed_files(root: str) -> list[str]:
    """The files a manifest covers: every file under ``root`` (relative, ``/``-separated, sorted) except
    hidden entries (``.hydra/``) and the manifest itself."""
    out = []
    for here, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            rel = os.path.relpath(os.path.join(here, name), root).replace(os.sep, "/")
            if not name.startswith(".") and rel != MANIFEST:
                out.append(rel)
    return sorted(out)


def file_entries(root: str, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    entries = {}
    for rel in names:
        size, sha, lines = file_digest(os.path.join(root, rel))
        entry: dict[str, Any] = {"bytes": size, "sha256": sha}
        if rel.endswith(".jsonl"):
            entry["records"] = lines
        entries[rel] = entry
    return entries


def source_fingerprint(source_dir: str, files: Iterable[str]) -> dict[str, Any]:
    """Names, sizes and sha256 of the input files, and one sha256 over all of them."""
    entries = {
        os.path.relpath(p, source_dir).replace(os.sep, "/"): dict(zip(("bytes", "sha256"), file_digest(p)[:2]))
        for p in files
    }
    blob = json.dumps(entries, sort_keys=True).encode("utf-8")
    return {"dir": os.path.abspath(source_dir), "files": entries, "sha256": hashlib.sha256(blob).hexdigest()}


def write_manifest(
    root: str, settings: Mapping[str, Any] | None = None, sources: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Write ``root/manifest.json`` over the files now in ``root`` (atomically: temporary file, fsync, rename)
    and return it. The builder calls this last; tests may call it to seal a hand-written corpus."""
    manifest = {
        "format": FORMAT,
        "files": file_entries(root, listed_files(root)),
        "settings": dict(settings or {}),
        "sources": dict(sources or {}),
    }
    path = os.path.join(root, MANIFEST)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, ensure_ascii=False, indent=1, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return manifest


# --- reading -----------------------------------------------------------------------------------------
def read_manifest(root: str, key: str = "data.root") -> dict[str, Any]:
    """The manifest of the corpus at ``root``; :class:`CorpusError` (one line) when there is none or it is
    not a manifest."""
    rebuild = REBUILD.format(root=root)
    if not os.path.isdir(root):
        raise CorpusError(
            f"{key}: {root} is not a directory (no PedCorpus build there; build one with "
            f"`python -m pedgpt.data.build source_dir=... out_dir={root}`)"
        )
    path = os.path.join(root, MANIFEST)
    if not os.path.isfile(path):
        raise CorpusError(f"{key}: {root} has no {MANIFEST} (not a complete PedCorpus build; {rebuild})")
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise CorpusError(f"{key}: {path} is unreadable ({type(e).__name__}: {e}); {rebuild}") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or not isinstance(files, dict):
        raise CorpusError(f"{key}: {path} is not a {FORMAT} manifest; {rebuild}")
    for rel, entry in files.items():
        if not (
            isinstance(entry, dict) and isinstance(entry.get("bytes"), int) and isinstance(entry.get("sha256"), str)
        ):
            raise CorpusError(f"{key}: {path}: malformed entry for {rel!r}; {rebuild}")
    return manifest


_VERIFIED: dict[tuple, dict[str, Any]] = {}


def _signature(root: str, manifest: dict[str, Any]) -> tuple:
    """What the cached verdict depends on: the stat of the manifest and of every listed file."""
    sig = []
    for rel in [MANIFEST, *sorted(manifest["files"])]:
        try:
            st = os.stat(os.path.join(root, rel))
        except OSError:
            return ()
        sig.append((rel, st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(sig)


def _check_file(root: str, rel: str, entry: dict[str, Any], full: bool, written_ns: int, key: str) -> None:
    path = os.path.join(root, rel)
    rebuild = REBUILD.format(root=root)
    try:
        st = os.stat(path)
    except OSError:
        raise CorpusError(f"{key}: {path} is listed in {MANIFEST} but missing; {rebuild}") from None
    if st.st_size != entry["bytes"]:
        raise CorpusError(
            f"{key}: {path} has {st.st_size:,} bytes, {MANIFEST} says {entry['bytes']:,} "
            f"(cut or changed since the build); {rebuild}"
        )
    hash_it = full or st.st_mtime_ns > written_ns
    if "records" not in entry and not hash_it:
        return
    if hash_it:
        _, sha, lines = file_digest(path)
    else:
        sha, lines = "", count_lines(path)  # the cheap check: no sha256 of an unmodified file
    if "records" in entry and lines != entry["records"]:
        raise CorpusError(
            f"{key}: {path} holds {lines:,} records, {MANIFEST} says {entry['records']:,} "
            f"(changed since the build); {rebuild}"
        )
    if hash_it and sha != entry["sha256"]:
        raise CorpusError(f"{key}: {path} differs from {MANIFEST} (sha256 changed since the build); {rebuild}")


def verify_corpus(
    root: str, full: bool = False, need: Iterable[str] = (), nonempty: Iterable[str] = (), key: str = "data.root"
) -> dict[str, Any]:
    """Check that ``root`` is a complete, unchanged PedCorpus build and return its manifest.

    Every file listed in the manifest must exist with the listed size and record count; with ``full`` (or
    for a file modified after the manifest) its sha256 must match too. ``need``: relative paths that must
    be part of the build (e.g. ``"sft/train.jsonl"``); ``nonempty``: paths that must also hold at least one
    record. ``key`` names the setting in messages (``data.root``, ``data_root``). Raises
    :class:`CorpusError` with one line. A verdict is cached until a file's size, mtime or inode changes.
    """
    manifest = read_manifest(root, key)
    files: dict[str, dict[str, Any]] = manifest["files"]
    cache_key = (os.path.abspath(root), full, _signature(root, manifest))
    if not cache_key[2] or cache_key not in _VERIFIED:
        written_ns = os.stat(os.path.join(root, MANIFEST)).st_mtime_ns
        for rel in sorted(files):
            _check_file(root, rel, files[rel], full, written_ns, key)
        _VERIFIED[cache_key] = manifest
    nonempty = list(nonempty)
    for rel in [*need, *nonempty]:
        if rel not in files:
            raise CorpusError(
                f"{key}: {os.path.join(root, rel)} is not part of this build ({MANIFEST} does not list it)"
            )
    for rel in nonempty:
        if not files[rel].get("records"):
            raise CorpusError(
                f"{key}: {os.path.join(root, rel)} holds no records (the build kept none; the reasons are under "
                f"`skipped` in {os.path.join(root, 'stats.json')})"
            )
    return manifest
