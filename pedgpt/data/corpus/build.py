"""PedCorpus builder: ``python -m pedgpt.data.build source_dir=DIR out_dir=DIR`` (config: ``conf/build.yaml``).

read every file (format from ``formats`` or detected) → convert → clean → KG diseases to task items →
splits → exact / near dedup → route to stage files and evaluation suites → contamination check →
write sorted JSONL + ``stats.{json,md,png}`` + ``skipped.jsonl`` + ``manifest.json``. Same inputs and seed
give byte-identical JSONL and stats.json.

Atomic: everything is written into ``<out_dir>.tmp-<pid>``; the manifest (per file: bytes, records, sha256;
the settings; the sources' fingerprint, :mod:`pedgpt.data.corpus.manifest`) is written last, and the
directory is swapped into place as the build's final act (:mod:`pedgpt.data.corpus.publish`). A killed
build leaves the previous corpus untouched; readers refuse a directory without a manifest.

Bad input (malformed JSON line, CSV row with missing columns, undecodable bytes, a field of the wrong type
or a role outside the format's vocabulary, a record the schema rejects) stops the build with one line
``path:line: reason`` and exit status 1, unless ``skip_invalid=true``, which skips and counts such lines
under ``stats.skipped``. Well-formed records that cannot serve (an empty answer, a duplicate, a
non-pediatric KG disease …) are always skipped and counted. ``stats.accounting`` balances every stage:
source rows seen = kept + skipped; KG diseases read = used + skipped; records made = written + skipped.
``skipped.jsonl`` lists where (``path:line``) the first skips of every reason came from.

A build that keeps no training record at all (every ``*/train.jsonl`` would be empty: an empty or wholly
unusable source) fails with one line naming the empty files and the skip counts, and writes nothing.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
from collections import defaultdict
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from omegaconf import OmegaConf

from pedgpt.data.corpus import kg_tasks
from pedgpt.data.corpus import stats as stats_mod
from pedgpt.data.corpus.clean import Limits, clean_record
from pedgpt.data.corpus.dedup import DedupConfig, decontaminate, dedup
from pedgpt.data.corpus.manifest import source_fingerprint, write_manifest
from pedgpt.data.corpus.publish import remove_stale, replaceable, swap_into_place, work_dir
from pedgpt.data.corpus.rewrite import rewrite_records
from pedgpt.data.corpus.skips import SkipLog, count_skip, merged
from pedgpt.data.corpus.sources import BadValue, Context, SourceError, Unusable, detect_format, read_rows
from pedgpt.data.corpus.sources.xywy_kg import richness
from pedgpt.data.corpus.splits import SplitConfig, assign, resolve
from pedgpt.data.schema import (
    Disease,
    EvalItem,
    Instruction,
    PreferencePair,
    PretrainText,
    Record,
    RecordError,
    write_jsonl,
)

SPLIT_RANK = {"test": 0, "dev": 1, "train": 2}
TRAIN_FILES = ("cpt/train.jsonl", "sft/train.jsonl", "dfpo/train.jsonl")


class Origins:
    """Where each record came from (``path:line`` of its source row), for error messages and the skip log.

    Keyed by object identity; the records are kept alive here so an identity is never reused mid-build."""

    def __init__(self) -> None:
        self._where: dict[int, str] = {}
        self._alive: list[Any] = []

    def set(self, record: Any, where: str) -> None:
        self._where[id(record)] = where
        self._alive.append(record)

    def copy(self, old: Any, new: Any) -> None:
        if id(old) in self._where:
            self.set(new, self._where[id(old)])

    def of(self, record: Any) -> str:
        return self._where.get(id(record)) or f"{record.source}/{record.id}"

    def rows(self) -> int:
        """How many distinct source rows produced the recorded records."""
        return len(set(self._where.values()))


def discover(source_dir: str, include: Iterable[str], exclude: Iterable[str]) -> list[str]:
    """Data files under ``source_dir`` matching ``include`` and not ``exclude`` globs, sorted."""
    if not os.path.isdir(source_dir):
        raise SourceError(f"source_dir={source_dir}: not a directory")
    found = []
    for root, dirs, files in os.walk(source_dir):
        dirs.sort()
        for name in sorted(files):
            rel = os.path.relpath(os.path.join(root, name), source_dir)
            if any(fnmatch.fnmatch(name, g) for g in include) and not any(
                fnmatch.fnmatch(name, g) or fnmatch.fnmatch(rel, g) for g in exclude
            ):
                found.append(os.path.join(root, name))
    return sorted(found, key=lambda p: os.path.relpath(p, source_dir))


def convert_file(
    path: str, cfg: Any, skipped: MutableMapping[str, int], origins: Origins | None = None
) -> list[Record]:
    """All records of one file. ``Unusable`` rows are counted (with ``path:line`` in a :class:`SkipLog`);
    a :class:`BadValue` or a record the schema rejects raises ``SourceError`` ``path:line: …`` unless
    ``skip_invalid``, which counts it too."""
    options = dict(cfg.sources)
    rows = read_rows(path, options, bool(cfg.skip_invalid), skipped)
    out: list[Record] = []
    fmt = None
    ctx = Context(path=path, seed=int(cfg.seed), options=options)
    for line, row in rows:
        fmt = fmt or detect_format(row, path, dict(cfg.formats))
        ctx.line = line
        where = f"{path}:{line}"
        try:
            made = fmt.convert(row, ctx)
        except BadValue as b:
            if not cfg.skip_invalid:
                raise SourceError(f"{where}: {b.detail}") from None
            count_skip(skipped, b.reason, where, b.detail)
            continue
        except Unusable as u:
            count_skip(skipped, u.reason, where)
            continue
        except (RecordError, KeyError, TypeError, AttributeError, ValueError, RecursionError) as e:
            detail = f"invalid {fmt.name} record ({type(e).__name__}: {e})"
            if not cfg.skip_invalid:
                raise SourceError(f"{where}: {detail}") from None
            count_skip(skipped, "invalid_record", where, detail)
            continue
        if not made:
            count_skip(skipped, "no_records", where)
        for r in made:
            if origins is not None:
                origins.set(r, where)
        out.extend(made)
    return out


def merge_diseases(
    diseases: list[Disease], skipped: SkipLog | None = None, origins: Origins | None = None
) -> list[Disease]:
    """One record per disease name: the richest wins, the earliest on a tie; every other record of the
    name is counted as ``kg_duplicate_merged``."""
    best: dict[str, Disease] = {}
    losers: list[Disease] = []
    for d in diseases:
        if d.name not in best:
            best[d.name] = d
        elif richness(d) > richness(best[d.name]):
            losers.append(best[d.name])
            best[d.name] = d
        else:
            losers.append(d)
    for d in losers:
        if skipped is not None:
            where = origins.of(d) if origins else f"{d.source}/{d.id}"
            skipped.note("kg_duplicate_merged", where, f"disease {d.name!r} appears more than once")
    return [best[name] for name in sorted(best)]


def is_task_disease(d: Disease, departments: list[str]) -> bool:
    """Whether a disease gets task items: its departments contain one of ``departments`` ([] = every disease)."""
    return not departments or any(k in dep for dep in d.departments for k in departments)


def kg_records(
    diseases: list[Disease],
    cfg: Any,
    split_cfg: SplitConfig,
    skipped: SkipLog | None = None,
    origins: Origins | None = None,
) -> list[Record]:
    """Task items, preference pairs and CPT text from the KG; each item takes its disease's split.

    A disease yields the intents its non-empty fields allow (``kg_tasks.has_intent``). A disease outside
    ``kg.task_departments`` is counted as ``kg_not_pediatric`` (unless ``kg.cpt_all_diseases`` keeps it for
    CPT text); one whose fields allow nothing at all as ``kg_nothing_to_say``."""
    depts = list(cfg.kg.task_departments)
    origins = origins or Origins()
    skipped = skipped if skipped is not None else SkipLog()
    by_symptom: dict[str, list[int]] = defaultdict(list)
    for i, d in enumerate(diseases):
        for s in dict.fromkeys(d.symptoms):
            by_symptom[s].append(i)
    seed = int(cfg.seed)
    out: list[Record] = []
    for d in progress_iter(diseases, "knowledge graph → tasks", cfg.progress):
        is_task = is_task_disease(d, depts)
        where = origins.of(d)
        if not is_task and not cfg.kg.cpt_all_diseases:
            skipped.note("kg_not_pediatric", where, f"disease {d.name!r}: departments {d.departments}")
            continue
        try:
            split = resolve(d.split, f"disease:{d.name}", split_cfg)
        except ValueError as e:
            raise SourceError(f"{where}: field 'split': {e}") from None
        # Distractors must share a symptom, so the diseases sharing none are left out up front: the
        # same result as the whole table, without scanning it for every case.
        table = [diseases[i] for i in sorted({i for s in d.symptoms for i in by_symptom[s]})]
        made: list[Record] = list(kg_tasks.cpt_texts(d))
        if is_task:
            made += (
                kg_tasks.medkqa_items(d, seed)
                + kg_tasks.evidiag_items(d, table, seed)
                + kg_tasks.trerecom_items(d, seed)
                + kg_tasks.preference_pairs(d, table, seed)
            )
        if not made:
            skipped.note("kg_nothing_to_say", where, f"disease {d.name!r} has no usable fields")
        for r in made:
            r.split = split
            origins.set(r, where)
        out += made
    return out


def to_eval(r: Instruction, suite: str) -> EvalItem:
    """A test-split conversation → an evaluation item: all turns but the last are the prompt."""
    turns = [m.content for m in r.messages if m.role == "assistant"]
    return EvalItem(
        prompt=r.messages[:-1],
        suite=suite,
        reference=r.response,
        task=r.task,
        system=r.system,
        source=r.source,
        id=r.id,
        split="test",
        department=r.meta.get("department"),
        turn_references=turns if len(turns) > 1 else None,
        meta=dict(r.meta),
    )


def pref_view(p: PreferencePair) -> EvalItem:
    return EvalItem(
        prompt=p.prompt, suite="preference", reference=p.chosen, task=p.task, source=p.source, id=p.id, split="test"
    )


def route(records: list[Record], cfg: Any) -> dict[str, list[Record]]:
    """Records with splits → output file (relative path) → records."""
    out: dict[str, list[Record]] = defaultdict(list)
    for s in cfg.suites.fixed:
        out.setdefault(f"eval/{s}.jsonl", [])
    for r in records:
        if isinstance(r, EvalItem):
            out[f"eval/{r.suite}.jsonl"].append(r)
        elif isinstance(r, PretrainText):
            if r.split != "train":  # there is no cpt test file: held-out text stays held out, in dev
                r.split = "dev"
            out[f"cpt/{r.split}.jsonl"].append(r)
        elif isinstance(r, PreferencePair):
            out[{"train": "dfpo/train.jsonl", "dev": "dfpo/dev.jsonl"}.get(r.split, "eval/preference.jsonl")].append(r)
        elif r.split == "test":
            suite = cfg.suites.by_source.get(r.source) or cfg.suites.by_task.get(r.task)
            if suite:
                out[f"eval/{suite}.jsonl"].append(to_eval(r, suite))
            else:  # a held-out conversation with no suite of its own stays held out, in dev
                r.split = "dev"
                out["sft/dev.jsonl"].append(r)
        else:
            out[f"sft/{r.split}.jsonl"].append(r)
    for stage in ("cpt", "sft", "dfpo"):
        for split in ("train", "dev"):
            out.setdefault(f"{stage}/{split}.jsonl", [])
    return out


def order_key(r: Record) -> tuple:
    return SPLIT_RANK.get(r.split or "train", 3), r.kind, r.source, r.id


def progress_iter(items: list, label: str, enabled: bool) -> Iterable:
    if not enabled:
        yield from items
        return
    from rich.progress import Progress

    with Progress(transient=False) as bar:
        task = bar.add_task(label, total=len(items))
        for it in items:
            yield it
            bar.advance(task)


def settings_of(cfg: Any) -> dict[str, Any]:
    """The build's resolved configuration as plain data (for the manifest)."""
    return dict(OmegaConf.to_container(cfg, resolve=True)) if OmegaConf.is_config(cfg) else dict(cfg)


def _empty_build_error(cfg: Any, skipped: Mapping[str, int], rows_seen: int) -> str:
    top = ", ".join(f"{r}: {n}" for r, n in sorted(skipped.items(), key=lambda kv: (-kv[1], kv[0]))[:6])
    return (
        f"source_dir={cfg.source_dir}: the build kept no training record ({', '.join(TRAIN_FILES)} would all be "
        f"empty; {rows_seen} source rows read, skipped: {top or 'none'}); nothing written to {cfg.out_dir}"
    )


def build(cfg: Any, extra_files: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Run the whole build and publish it atomically at ``cfg.out_dir``; returns the statistics written to
    ``stats.json``. ``extra_files`` (relative path → text, e.g. Hydra's ``.hydra/config.yaml``) are written
    into the build too (hidden paths stay out of the manifest)."""
    out_dir = str(cfg.out_dir)
    why = replaceable(out_dir)
    if why:
        raise SourceError(f"out_dir={out_dir}: {why}")
    remove_stale(out_dir)
    limits = Limits(**cfg.clean)
    split_cfg = SplitConfig(
        ratios=dict(cfg.splits.ratios), upstream=dict(cfg.splits.upstream), salt=str(cfg.splits.salt)
    )
    dedup_cfg = DedupConfig(**cfg.dedup)
    files = discover(str(cfg.source_dir), list(cfg.include), list(cfg.exclude))
    row_skips, disease_skips, record_skips = SkipLog(), SkipLog(), SkipLog()
    origins = Origins()
    raw: list[Record] = []
    for path in progress_iter(files, "reading sources", cfg.progress):
        raw += convert_file(path, cfg, row_skips, origins)
    rows_kept = origins.rows()
    read_diseases = [r for r in raw if isinstance(r, Disease)]
    diseases = merge_diseases(read_diseases, disease_skips, origins)
    kg = kg_records(diseases, cfg, split_cfg, disease_skips, origins)
    rewrite_counts: dict[str, int] = {}
    if cfg.rewrite.enabled:
        try:
            rewritten = rewrite_records(kg, cfg.rewrite, rewrite_counts)
        except (ValueError, RuntimeError) as e:
            raise SourceError(str(e)) from None
        for old, new in zip(kg, rewritten):
            origins.copy(old, new)
        kg = rewritten
    others = [r for r in raw if not isinstance(r, Disease)]
    for r in others:
        if not isinstance(r, EvalItem):
            try:
                r.split = assign(r, split_cfg)
            except ValueError as e:
                raise SourceError(f"{origins.of(r)}: field 'split': {e}") from None
    made = kg + others
    records: list[Record] = []
    for r in made:
        try:
            cleaned = clean_record(r, limits)
        except Unusable as u:
            record_skips.note(u.reason, origins.of(r))
            continue
        origins.copy(r, cleaned)
        records.append(cleaned)
    kept: list[Record] = []
    for kind in progress_iter(["pretrain", "instruction", "preference", "eval"], "deduplicating", cfg.progress):
        pool = sorted((r for r in records if r.kind == kind), key=order_key)
        removed_log: list[tuple[Record, str]] = []
        pool, _ = dedup(pool, dedup_cfg, removed_log)
        for r, reason in removed_log:
            record_skips.note(reason, origins.of(r))
        kept += pool
    outputs = route(kept, cfg)
    evals = [r for p, rs in outputs.items() if p.startswith("eval/") for r in rs]
    eval_items = [r if isinstance(r, EvalItem) else pref_view(r) for r in evals]
    report: list[dict[str, str]] = []
    for path in sorted(p for p in outputs if not p.startswith("eval/")):
        before = outputs[path]
        outputs[path], rep = decontaminate(before, eval_items, dedup_cfg)
        still = {id(r) for r in outputs[path]}
        for r, row in zip((r for r in before if id(r) not in still), rep):
            record_skips.note("contaminated", origins.of(r), f"overlaps {row['suite']}/{row['eval_id']} ({row['by']})")
        report += rep
    skipped = merged([row_skips, disease_skips, record_skips])
    if not any(outputs[p] for p in TRAIN_FILES):
        raise SourceError(_empty_build_error(cfg, skipped, rows_kept + sum(row_skips.values())))
    for path in sorted(outputs):
        outputs[path] = sorted(outputs[path], key=lambda r: (r.id, r.source))
    accounting = {
        "rows": {
            "seen": rows_kept + sum(row_skips.values()),
            "kept": rows_kept,
            "skipped": dict(sorted(row_skips.items())),
        },
        "diseases": {
            "read": len(read_diseases),
            "used": len(read_diseases) - sum(disease_skips.values()),
            "skipped": dict(sorted(disease_skips.items())),
        },
        "records": {
            "made": len(made),
            "written": sum(len(rs) for rs in outputs.values()),
            "skipped": dict(sorted(record_skips.items())),
        },
    }
    stats = stats_mod.compute(outputs, skipped, report, cfg.stats.tokenizer)
    stats["contamination"]["examples"] = sorted(report, key=lambda x: (x["suite"], x["eval_id"], x["train_id"]))[:20]
    stats["accounting"] = accounting
    if cfg.rewrite.enabled:
        stats["rewrite"] = dict(sorted(rewrite_counts.items()))
    stats["skip_log"] = "skipped.jsonl"
    write_build(out_dir, outputs, stats, skipped, cfg, files, extra_files or {})
    return stats


def write_build(
    out_dir: str,
    outputs: Mapping[str, list[Record]],
    stats: dict[str, Any],
    skipped: SkipLog,
    cfg: Any,
    source_files: list[str],
    extra_files: Mapping[str, str],
) -> None:
    """Write every file into ``<out_dir>.tmp-<pid>``, the manifest last, then swap it into place."""
    tmp = work_dir(out_dir)
    if os.path.lexists(tmp):
        shutil.rmtree(tmp)
    os.makedirs(tmp)
    for path in sorted(outputs):
        os.makedirs(os.path.dirname(os.path.join(tmp, path)), exist_ok=True)
        write_jsonl(os.path.join(tmp, path), outputs[path])
    stats_mod.write(stats, tmp)
    with open(os.path.join(tmp, "skipped.jsonl"), "w", encoding="utf-8") as f:
        for row in skipped.rows():
            f.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    for rel, text in extra_files.items():
        os.makedirs(os.path.dirname(os.path.join(tmp, rel)) or tmp, exist_ok=True)
        with open(os.path.join(tmp, rel), "w", encoding="utf-8") as f:
            f.write(text)
    write_manifest(tmp, settings_of(cfg), source_fingerprint(str(cfg.source_dir), source_files))
    swap_into_place(tmp, out_dir)
