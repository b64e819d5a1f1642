"""Where a suite's items come from.

* A PedCorpus build (``data_root``): ``<data_root>/eval/<suite>.jsonl`` — EvalItem records, or
  PreferencePair records for ``preference``. The build's manifest is verified first
  (:func:`~pedgpt.data.corpus.manifest.verify_corpus`): a directory without one, or whose files differ
  from it, is refused with one line (:class:`~pedgpt.data.corpus.manifest.CorpusError`).
* ``cmd`` may instead read any CMD-format file (``cmd_file``): the department CSVs
  (``department,title,ask,answer``, UTF-8 or GB18030) or JSONL rows in CMD form; each row becomes an item
  through the same converter the corpus builder uses. A field of the wrong type stops with
  ``path:line: field … must be text, got …``; rows that cannot serve (an empty answer) are skipped and
  their count printed to stderr.
* No ``data_root``: the bundled demo dev split (``pedgpt.data.corpus.demo``) gives ``medkqa``, ``evidiag``,
  ``trerecom`` and ``preference``; the other suites have no demo data and are reported as unavailable.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from typing import Any

from pedgpt.data.corpus.build import to_eval
from pedgpt.data.corpus.demo import build_demo_corpus
from pedgpt.data.corpus.manifest import verify_corpus
from pedgpt.data.corpus.sources.base import BadValue, Context, Unusable
from pedgpt.data.corpus.sources.cmd_csv import convert, read_csv_rows
from pedgpt.data.schema import EvalItem, RecordError, read_jsonl

DEMO_SUITES: tuple[str, ...] = ("medkqa", "evidiag", "trerecom", "preference")


class NoItems(Exception):
    """A suite without data in this setting; the message says why (reported, not fatal)."""


def _demo_items(suite: str) -> list[Any]:
    corpus = build_demo_corpus()
    if suite == "preference":
        return [p for p in corpus["preference"] if p.split == "dev"]
    return [to_eval(r, suite) for r in corpus["sft"] if r.split == "dev" and r.task == suite]


def _cmd_items(path: str) -> list[EvalItem]:
    """Items of a CMD-format CSV / JSONL file (or EvalItem JSONL) for the ``cmd`` suite."""
    skipped: Counter = Counter()
    if path.endswith(".csv"):
        rows = list(read_csv_rows(path, skipped=skipped))
    else:
        with open(path, encoding="utf-8-sig") as f:
            rows = []
            for lineno, line in enumerate(f, 1):
                if line.strip():
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as e:
                        raise RecordError(f"{path}:{lineno}: invalid JSON ({e.msg})") from None
                    except RecursionError:
                        raise RecordError(f"{path}:{lineno}: invalid JSON (nested too deeply)") from None
                    if not isinstance(row, dict):
                        raise RecordError(f"{path}:{lineno}: line is not a JSON object")
                    rows.append((lineno, row))
        if rows and rows[0][1].get("kind") == "eval":
            return list(read_jsonl(path, "eval"))
    items = []
    for lineno, row in rows:
        try:
            items += [to_eval(r, "cmd") for r in convert(row, Context(path=path, line=lineno))]
        except BadValue as e:
            raise RecordError(f"{path}:{lineno}: {e.detail}") from None
        except Unusable as u:
            skipped[u.reason] += 1
    if skipped:
        print(f"[evaluate] cmd_file={path}: skipped {dict(sorted(skipped.items()))}", file=sys.stderr)
    return items


def load_items(suite: str, data_root: str | None, cmd_file: str | None = None, limit: int | None = None) -> list[Any]:
    """The first ``limit`` items of ``suite`` (all when None); raises :class:`NoItems` when there are none."""
    if suite == "cmd" and cmd_file:
        if not os.path.exists(cmd_file):
            raise FileNotFoundError(f"cmd_file={cmd_file}: no such file")
        items = _cmd_items(cmd_file)
    elif data_root is None:
        if suite not in DEMO_SUITES:
            raise NoItems(
                f"no demo data for {suite} (set data_root to a PedCorpus build"
                f"{' or cmd_file' if suite == 'cmd' else ''})"
            )
        items = _demo_items(suite)
    else:
        rel = f"eval/{suite}.jsonl"
        path = os.path.join(data_root, rel)
        if rel not in verify_corpus(data_root, key="data_root")["files"]:
            raise NoItems(f"{path} is not part of this build")
        items = list(read_jsonl(path, "preference" if suite == "preference" else "eval"))
    if not items:
        raise NoItems(f"no {suite} items")
    return items[:limit] if limit is not None else items
