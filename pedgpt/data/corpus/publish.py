"""Putting a finished build in place atomically: a kill at any moment leaves the old complete corpus, the
new complete corpus, or (with the two-rename fallback, for an instant) no corpus — never a mix.

The builder writes everything into ``<out_dir>.tmp-<pid>`` next to ``out_dir``, writes the manifest last,
fsyncs, and then :func:`swap_into_place` exchanges the two directories in one ``renameat2(RENAME_EXCHANGE)``
call (Linux); where that is unavailable it renames the old build aside to ``<out_dir>.old-<pid>`` and the new
one into place. The old build is deleted afterwards. Leftovers of killed builds (``.tmp-<pid>`` /
``.old-<pid>`` of processes no longer running) are removed by the next build (:func:`remove_stale`).
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil

from pedgpt.data.corpus.manifest import MANIFEST

#: what an existing ``out_dir`` may hold for a build to replace it (besides being empty or a PedCorpus)
HYDRA_ONLY = {".hydra", "build.log"}
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def work_dir(out_dir: str) -> str:
    """The temporary build directory of this process, next to ``out_dir``."""
    return f"{os.path.abspath(out_dir)}.tmp-{os.getpid()}"


def replaceable(out_dir: str) -> str | None:
    """None when ``out_dir`` may be replaced by a new build (absent, empty, a PedCorpus build — with a
    manifest, or an older one with ``stats.json`` — or only Hydra's files); otherwise why not."""
    if not os.path.lexists(out_dir):
        return None
    if not os.path.isdir(out_dir) or os.path.islink(out_dir):
        return "exists and is not a directory"
    names = set(os.listdir(out_dir))
    if not names or MANIFEST in names or "stats.json" in names or names <= HYDRA_ONLY:
        return None
    return "exists and is not a PedCorpus build (no manifest.json or stats.json); choose another out_dir or remove it"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(out_dir: str) -> list[str]:
    """Delete ``<out_dir>.tmp-<pid>`` / ``<out_dir>.old-<pid>`` left by builds whose process is gone."""
    out_dir = os.path.abspath(out_dir)
    parent, base = os.path.split(out_dir)
    if not os.path.isdir(parent):
        return []
    pattern = re.compile(re.escape(base) + r"\.(?:tmp|old)-(\d+)")
    removed = []
    for name in sorted(os.listdir(parent)):
        m = pattern.fullmatch(name)
        if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
            removed.append(name)
    return removed


def fsync_tree(root: str) -> None:
    """fsync every file and directory under ``root`` (so the rename publishes data that is on disk)."""
    for here, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(here, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(here)


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _exchange(a: str, b: str) -> bool:
    """Atomically swap two paths (Linux ``renameat2``); False where the call or the flag is unsupported."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: fall back to two renames
        return False
    raise OSError(err, os.strerror(err), b)


def swap_into_place(tmp: str, out_dir: str) -> None:
    """Make the complete build ``tmp`` the directory ``out_dir``; the previous ``out_dir`` (if any) is removed."""
    out_dir = os.path.abspath(out_dir)
    parent = os.path.dirname(out_dir)
    fsync_tree(tmp)
    if not os.path.lexists(out_dir):
        os.rename(tmp, out_dir)
    elif _exchange(tmp, out_dir):
        shutil.rmtree(tmp)  # now the old build
    else:
        old = f"{out_dir}.old-{os.getpid()}"
        os.rename(out_dir, old)
        os.rename(tmp, out_dir)
        shutil.rmtree(old)
    fsync_dir(parent)
