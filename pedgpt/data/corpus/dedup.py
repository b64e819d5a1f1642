"""Duplicate removal and the train-vs-eval contamination check.

Two records are duplicates when their question + answer text is equal after removing whitespace and case
(exact), or when the Jaccard similarity of their character n-gram sets, estimated by MinHash
(datasketch, LSH for candidates, then the MinHash estimate checked against the threshold), reaches
``threshold`` (near). The first record in the given order is kept.

Contamination: a training record is removed when its question + answer is a near-duplicate of an
evaluation item's, or its question alone is a near-duplicate of an evaluation question (reference-free
items have no answer) of at least ``min_question_chars`` characters. Every removal is reported.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from datasketch import MinHash, MinHashLSH

from pedgpt.data.schema import EvalItem, Instruction, PreferencePair, PretrainText, Record

_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class DedupConfig:
    ngram: int = 5
    threshold: float = 0.85
    num_perm: int = 128
    seed: int = 1
    max_chars: int = 2000  # only the first max_chars characters are shingled
    min_question_chars: int = 12


def question_text(r: Record) -> str:
    """The prompt side of a record: every turn before the answer (a pretraining text is all prompt)."""
    if isinstance(r, Instruction):
        return "\n".join(m.content for m in r.messages[:-1])
    if isinstance(r, (PreferencePair, EvalItem)):
        return "\n".join(m.content for m in r.prompt)
    if isinstance(r, PretrainText):
        return r.text
    raise TypeError(f"no question text for {type(r).__name__}")


def qa_text(r: Record) -> str:
    """Question + answer: the whole conversation, a pair's chosen answer, an item's reference."""
    if isinstance(r, Instruction):
        return "\n".join(m.content for m in r.messages)
    if isinstance(r, PreferencePair):
        return question_text(r) + "\n" + r.chosen
    if isinstance(r, EvalItem):
        return question_text(r) + ("\n" + r.reference if r.reference and r.choices is None else "")
    return question_text(r)


def canonical(text: str) -> str:
    return _SPACE.sub("", text).lower()


def shingles(text: str, n: int) -> list[bytes]:
    """Distinct character n-grams of the canonical text, in first-seen order (the text itself if shorter)."""
    t = canonical(text)
    grams = [t[i : i + n] for i in range(max(1, len(t) - n + 1))]
    return [g.encode("utf-8") for g in dict.fromkeys(grams)]


class NearDupIndex:
    """MinHash LSH over character n-grams. ``add(key, text)``; ``match(text)`` → the first key above threshold."""

    def __init__(self, cfg: DedupConfig):
        self.cfg = cfg
        self.lsh = MinHashLSH(threshold=cfg.threshold, num_perm=cfg.num_perm)
        self.hashes: dict[str, MinHash] = {}
        proto = MinHash(num_perm=cfg.num_perm, seed=cfg.seed, hashfunc=zlib.crc32)
        self._perm, self._scheme = proto.permutations, proto.scheme

    def minhash(self, text: str) -> MinHash:
        """MinHash of the text's n-grams; crc32 (C speed, stable across runs) as the 32-bit base hash."""
        m = MinHash(
            num_perm=self.cfg.num_perm,
            seed=self.cfg.seed,
            hashfunc=zlib.crc32,
            permutations=self._perm,
            scheme=self._scheme,
        )
        m.update_batch(shingles(text[: self.cfg.max_chars], self.cfg.ngram))
        return m

    def match(self, text: str, m: MinHash | None = None) -> str | None:
        m = m or self.minhash(text)
        hits = [k for k in self.lsh.query(m) if self.hashes[k].jaccard(m) >= self.cfg.threshold]
        return min(hits) if hits else None

    def add(self, key: str, text: str, m: MinHash | None = None) -> None:
        m = m or self.minhash(text)
        self.lsh.insert(key, m)
        self.hashes[key] = m


def dedup(
    records: Sequence[Record], cfg: DedupConfig, log: list[tuple[Record, str]] | None = None
) -> tuple[list[Record], Counter]:
    """Keep the first of each exact / near-duplicate group (by :func:`qa_text`), in the given order.

    Returns the kept records and a counter ``{"exact_duplicate": n, "near_duplicate": m}``; ``log`` (if
    given) receives ``(removed record, reason)`` for every removal.
    """
    seen: set[str] = set()
    index = NearDupIndex(cfg)
    kept: list[Record] = []
    removed: Counter = Counter()
    for i, r in enumerate(records):
        text = qa_text(r)
        digest = hashlib.sha1(canonical(text).encode("utf-8")).hexdigest()
        if digest in seen:
            removed["exact_duplicate"] += 1
            if log is not None:
                log.append((r, "exact_duplicate"))
            continue
        seen.add(digest)
        m = index.minhash(text)
        if index.match(text, m) is not None:
            removed["near_duplicate"] += 1
            if log is not None:
                log.append((r, "near_duplicate"))
            continue
        index.add(f"{i:09d}", text, m)
        kept.append(r)
    return kept, removed


def decontaminate(
    train: Iterable[Record], evals: Iterable[EvalItem], cfg: DedupConfig
) -> tuple[list[Record], list[dict[str, str]]]:
    """Drop training records that overlap an evaluation item (see module doc).

    Returns the kept training records and one report row per removal:
    ``{"train_id", "train_source", "eval_id", "suite", "by": "qa" | "question"}``.
    """
    qa_index, q_index = NearDupIndex(cfg), NearDupIndex(cfg)
    by_key: dict[str, EvalItem] = {}
    for e in evals:
        key = f"{e.suite}/{e.id}"
        by_key[key] = e
        qa_index.add(key, qa_text(e))
        q = question_text(e)
        if len(canonical(q)) >= cfg.min_question_chars:
            q_index.add(key, q)
    kept: list[Record] = []
    report: list[dict[str, str]] = []
    for r in train:
        hit, by = qa_index.match(qa_text(r)), "qa"
        if hit is None and not isinstance(r, PretrainText):
            q = question_text(r)
            if len(canonical(q)) >= cfg.min_question_chars:
                hit, by = q_index.match(q), "question"
        if hit is None:
            kept.append(r)
            continue
        e = by_key[hit]
        report.append({"train_id": r.id, "train_source": r.source, "eval_id": e.id, "suite": e.suite, "by": by})
    return kept, report
