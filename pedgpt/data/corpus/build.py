"""PedCorpus builder: ``python -m pedgpt.data.build source_dir=DIR out_dir=DIR`` (config: ``conf/build.yaml``).

read every file (format from ``formats`` or detected) → convert → clean → KG diseases to task items →
splits → exact / near dedup → route to stage files and evaluation suites → contamination check →
write sorted JSONL + ``stats.{json,md,png}``. Same inputs and seed give byte-identical JSONL and stats.json.

Bad input (malformed JSON line, CSV row with missing columns, undecodable bytes, a record the schema
rejects) stops the build with one line ``path:line: reason`` and exit status 1, unless
``skip_invalid=true``, which skips and counts such lines under ``stats.skipped``.
"""

from __future__ import annotations

import fnmatch
import os
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from pedgpt.data.corpus import kg_tasks
from pedgpt.data.corpus import stats as stats_mod
from pedgpt.data.corpus.clean import Limits, clean_record
from pedgpt.data.corpus.dedup import DedupConfig, decontaminate, dedup
from pedgpt.data.corpus.rewrite import rewrite_records
from pedgpt.data.corpus.sources import Context, SourceError, Unusable, detect_format, read_rows
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


def convert_file(path: str, cfg: Any, skipped: Counter) -> list[Record]:
    """All records of one file; ``Unusable`` rows are counted, bad rows raise ``SourceError``."""
    options = dict(cfg.sources)
    rows = read_rows(path, options, bool(cfg.skip_invalid), skipped)
    out: list[Record] = []
    fmt = None
    ctx = Context(path=path, seed=int(cfg.seed), options=options)
    for line, row in rows:
        fmt = fmt or detect_format(row, path, dict(cfg.formats))
        ctx.line = line
        try:
            out.extend(fmt.convert(row, ctx))
        except Unusable as u:
            skipped[u.reason] += 1
        except (RecordError, KeyError, TypeError, AttributeError, ValueError) as e:
            if not cfg.skip_invalid:
                raise SourceError(f"{path}:{line}: invalid {fmt.name} record ({type(e).__name__}: {e})") from None
            skipped["invalid_record"] += 1
    return out


def merge_diseases(diseases: list[Disease]) -> list[Disease]:
    """One record per disease name: the richest wins, the earliest on a tie."""
    best: dict[str, Disease] = {}
    for d in diseases:
        if d.name not in best or richness(d) > richness(best[d.name]):
            best[d.name] = d
    return [best[name] for name in sorted(best)]


def kg_records(diseases: list[Disease], cfg: Any, split_cfg: SplitConfig) -> list[Record]:
    """Task items, preference pairs and CPT text from the KG; each item takes its disease's split.

    A disease yields the intents its non-empty fields allow (``kg_tasks.has_intent``)."""
    depts = list(cfg.kg.task_departments)
    by_symptom: dict[str, list[int]] = defaultdict(list)
    for i, d in enumerate(diseases):
        for s in dict.fromkeys(d.symptoms):
            by_symptom[s].append(i)
    seed = int(cfg.seed)
    out: list[Record] = []
    for d in progress_iter(diseases, "knowledge graph → tasks", cfg.progress):
        is_task = not depts or any(k in dep for dep in d.departments for k in depts)
        if not is_task and not cfg.kg.cpt_all_diseases:
            continue
        try:
            split = resolve(d.split, f"disease:{d.name}", split_cfg)
        except ValueError as e:
            raise SourceError(f"{d.source}/{d.id}: {e}") from None
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
        for r in made:
            r.split = split
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


def build(cfg: Any) -> dict[str, Any]:
    """Run the whole build; returns the statistics written to ``stats.json``."""
    skipped: Counter = Counter()
    limits = Limits(**cfg.clean)
    split_cfg = SplitConfig(
        ratios=dict(cfg.splits.ratios), upstream=dict(cfg.splits.upstream), salt=str(cfg.splits.salt)
    )
    dedup_cfg = DedupConfig(**cfg.dedup)
    files = discover(str(cfg.source_dir), list(cfg.include), list(cfg.exclude))
    raw: list[Record] = []
    for path in progress_iter(files, "reading sources", cfg.progress):
        raw += convert_file(path, cfg, skipped)
    diseases = merge_diseases([r for r in raw if isinstance(r, Disease)])
    kg = kg_records(diseases, cfg, split_cfg)
    if cfg.rewrite.enabled:
        try:
            kg = rewrite_records(kg, cfg.rewrite)
        except (ValueError, RuntimeError) as e:
            raise SourceError(str(e)) from None
    others = [r for r in raw if not isinstance(r, Disease)]
    for r in others:
        if not isinstance(r, EvalItem):
            try:
                r.split = assign(r, split_cfg)
            except ValueError as e:
                raise SourceError(f"{r.source}/{r.id}: {e}") from None
    records: list[Record] = []
    for r in kg + others:
        try:
            records.append(clean_record(r, limits))
        except Unusable as u:
            skipped[u.reason] += 1
    kept: list[Record] = []
    for kind in progress_iter(["pretrain", "instruction", "preference", "eval"], "deduplicating", cfg.progress):
        pool = sorted((r for r in records if r.kind == kind), key=order_key)
        pool, removed = dedup(pool, dedup_cfg)
        skipped.update(removed)
        kept += pool
    outputs = route(kept, cfg)
    evals = [r for p, rs in outputs.items() if p.startswith("eval/") for r in rs]
    eval_items = [r if isinstance(r, EvalItem) else pref_view(r) for r in evals]
    report: list[dict[str, str]] = []
    for path in sorted(p for p in outputs if not p.startswith("eval/")):
        outputs[path], rep = decontaminate(outputs[path], eval_items, dedup_cfg)
        report += rep
    if report:
        skipped["contaminated"] = len(report)
    out_dir = str(cfg.out_dir)
    for path in sorted(outputs):
        outputs[path] = sorted(outputs[path], key=lambda r: (r.id, r.source))
        os.makedirs(os.path.dirname(os.path.join(out_dir, path)), exist_ok=True)
        write_jsonl(os.path.join(out_dir, path), outputs[path])
    stats = stats_mod.compute(outputs, skipped, report, cfg.stats.tokenizer)
    stats["contamination"]["examples"] = sorted(report, key=lambda x: (x["suite"], x["eval_id"], x["train_id"]))[:20]
    stats_mod.write(stats, out_dir)
    return stats
