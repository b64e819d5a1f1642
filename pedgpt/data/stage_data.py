"""Each stage's training and validation examples, from the bundled demo corpus or a built PedCorpus.

``data.root`` null → the team-written demo corpus (``pedgpt.data.corpus.demo``); otherwise a directory laid
out by ``python -m pedgpt.data.build`` (``cpt/``, ``sft/``, ``dfpo/`` with ``train.jsonl`` / ``dev.jsonl``).

Opening a built corpus verifies its manifest first (:func:`pedgpt.data.corpus.manifest.verify_corpus`: a
directory without ``manifest.json``, or whose files differ from it, is refused with one line), then reads
records strictly (:func:`pedgpt.data.schema.read_jsonl`: ``path:line:`` errors naming the field) — all
before any tokenizer is trained.
"""

from __future__ import annotations

import functools
import json
import os
import random
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from pedgpt.common.errors import ConfigError
from pedgpt.data.corpus.demo import build_demo_corpus
from pedgpt.data.corpus.manifest import verify_corpus
from pedgpt.data.schema import PEDIATRIC_TASKS, Instruction, PreferencePair, PretrainText, RecordError, read_jsonl
from pedgpt.data.token_store import records_digest


@functools.lru_cache(maxsize=4)
def _demo(seed: int) -> dict[str, list]:
    return build_demo_corpus(seed=seed)


def _split(records: list, split: str) -> list:
    return [r for r in records if (r.split or "train") == split]


def _read(root: str, sub: str, split: str) -> list:
    rel = f"{sub}/{split}.jsonl"
    verify_corpus(root, need=[rel])
    return list(read_jsonl(os.path.join(root, rel)))


def corpus_part(data_cfg: Any, part: str, split: str) -> list:
    """``part`` ∈ {cpt, sft, preference}; ``split`` ∈ {train, dev}."""
    if data_cfg.root is None:
        return _split(_demo(int(data_cfg.demo_seed))[part], split)
    return _read(data_cfg.root, {"cpt": "cpt", "sft": "sft", "preference": "dfpo"}[part], split)


#: PedCorpus sub-directory → the demo corpus part holding the same records
DEMO_PARTS = {"cpt": "cpt", "sft": "sft", "dfpo": "preference"}


def data_identity(data_cfg: Any, subs: Sequence[str]) -> dict[str, str]:
    """What identifies the data of PedCorpus sub-directories ``subs`` without reading it: each file's sha256 from
    the corpus manifest (verified: sizes and record counts), or for the demo corpus its seed and a digest of its
    records (small)."""
    if data_cfg.root is None:
        demo = _demo(int(data_cfg.demo_seed))
        return {sub: records_digest(demo[DEMO_PARTS[sub]]) for sub in subs}
    files = verify_corpus(data_cfg.root)["files"]
    rels = [f"{sub}/{split}.jsonl" for sub in subs for split in ("train", "dev")]
    return {rel: files[rel]["sha256"] for rel in rels if rel in files}


def repeat_by_source(records: list, epochs: dict[str, float], seed: int) -> list:
    """Each record ``epochs[source]`` times (default 1): whole epochs repeat every record, a fractional
    part adds a seeded sample of that source's records; 0 leaves the source out."""
    by_source: dict[str, list] = {}
    for r in records:
        by_source.setdefault(r.source, []).append(r)
    rng = random.Random(seed)
    out: list = []
    for source in sorted(by_source):
        recs = by_source[source]
        e = float(epochs.get(source, 1.0))
        if e < 0:
            raise ValueError(f"cpt.source_epochs.{source}: must be >= 0, got {e}")
        whole, frac = int(e), e - int(e)
        out += recs * whole + rng.sample(recs, round(frac * len(recs)))
    return out


def hybrid_cpt_texts(
    texts: list[PretrainText],
    instructions: list[Instruction],
    ratio: float,
    render,
    seed: int,
    source_epochs: dict[str, float] | None = None,
) -> tuple[list[str], dict[str, int]]:
    """Plain texts mixed with instructions flattened to text, instructions making up ``ratio`` of documents.

    ``source_epochs`` repeats (or subsamples) plain texts per upstream source before mixing. Instructions
    are sampled without replacement (and cycled only when more are needed than exist).
    """
    if source_epochs:
        texts = repeat_by_source(texts, source_epochs, seed)
    plain = [t.text for t in texts if t.text.strip()]
    if not 0 <= ratio < 1:
        raise ValueError(f"cpt.instruction_ratio must be in [0, 1), got {ratio}")
    want = round(ratio * len(plain) / (1 - ratio)) if plain else len(instructions)
    rng = random.Random(seed)
    pool = list(instructions)
    chosen: list[Instruction] = []
    while pool and len(chosen) < want:
        rng.shuffle(pool)
        chosen.extend(pool[: want - len(chosen)])
    docs = plain + [render(r) for r in chosen]
    rng.shuffle(docs)
    return docs, {"plain_docs": len(plain), "instruction_docs": len(chosen)}


def mole_instructions(records: list[Instruction], general_ratio: float, seed: int) -> list[Instruction]:
    """The pediatric tasks plus a share ``general_ratio`` of other instructions (general / consult)."""
    ped = [r for r in records if r.task in PEDIATRIC_TASKS]
    other = [r for r in records if r.task not in PEDIATRIC_TASKS]
    n_other = min(len(other), round(general_ratio * len(ped) / max(1e-9, 1 - general_ratio)))
    return ped + random.Random(seed).sample(other, n_other)


def count_skips(counter: Counter) -> dict[str, int]:
    return {k: v for k, v in sorted(counter.items()) if v}


def has_record(path: str, want: Callable[[dict], bool] = lambda rec: True) -> bool:
    """Whether a JSONL file holds a record satisfying ``want`` (stops at the first one); a line that is not
    a JSON object raises ``RecordError`` ``path:line: …``."""
    with open(path, encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except (ValueError, RecursionError) as e:
                raise RecordError(f"{path}:{lineno}: invalid JSON ({type(e).__name__})") from None
            if not isinstance(rec, dict):
                raise RecordError(f"{path}:{lineno}: a record must be a JSON object")
            if want(rec):
                return True
    return False


def require_records(
    root: str, sub: str, split: str, message: str, want: Callable[[dict], bool] = lambda rec: True
) -> None:
    """Startup check of a built PedCorpus: ``root/sub/split.jsonl`` must hold a record satisfying ``want``;
    otherwise :class:`ConfigError` with ``message`` (``{path}`` is filled in). The corpus's manifest is
    verified first (:class:`~pedgpt.data.corpus.manifest.CorpusError`, one line)."""
    verify_corpus(root, need=[f"{sub}/{split}.jsonl"])
    path = os.path.join(root, sub, f"{split}.jsonl")
    if not has_record(path, want):
        raise ConfigError(message.format(path=path))


__all__ = [
    "corpus_part",
    "hybrid_cpt_texts",
    "mole_instructions",
    "count_skips",
    "Instruction",
    "PreferencePair",
    "PretrainText",
]
