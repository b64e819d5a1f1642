"""Atomic, verifiable PedCorpus builds: the manifest, its verification by every reader, the accounting of
every record, and crashes at every step of publishing (the kill test with real subprocesses is in
``test_build_killed.py``)."""

import csv
import hashlib
import json
import os
import shutil

import pytest
from omegaconf import OmegaConf

from helpers import FIXTURES
from helpers.corpus import run_build
from pedgpt.data import stage_data as sd
from pedgpt.data.corpus import build as build_mod
from pedgpt.data.corpus import publish
from pedgpt.data.corpus.manifest import CorpusError, verify_corpus, write_manifest
from pedgpt.data.corpus.sources import SourceError
from pedgpt.evaluation.items import load_items

CORPUS = FIXTURES / "corpus"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("manifest") / "out"
    stats = run_build(CORPUS, out)
    return out, stats


def fresh_copy(built, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(built[0], out, copy_function=shutil.copy2)  # keeps mtimes
    return out


def data_cfg(root):
    return OmegaConf.create({"root": str(root), "demo_seed": 0})


def test_manifest_lists_every_file_with_size_records_and_hash(built):
    out, _ = built
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    on_disk = sorted(
        p.relative_to(out).as_posix()
        for p in out.rglob("*")
        if p.is_file() and ".hydra" not in p.parts and p.name != "manifest.json"
    )
    assert sorted(manifest["files"]) == on_disk and "skipped.jsonl" in on_disk
    for rel, entry in manifest["files"].items():
        data = (out / rel).read_bytes()
        assert entry["bytes"] == len(data) and entry["sha256"] == hashlib.sha256(data).hexdigest(), rel
        if rel.endswith(".jsonl"):
            assert entry["records"] == len([x for x in data.decode("utf-8").splitlines() if x.strip()]), rel
    assert manifest["settings"]["source_dir"] == str(CORPUS) and manifest["settings"]["seed"] == 1234
    sources = manifest["sources"]["files"]
    assert sorted(sources) == sorted(p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*") if p.is_file())
    for rel, entry in sources.items():
        assert entry["sha256"] == hashlib.sha256((CORPUS / rel).read_bytes()).hexdigest(), rel
    assert verify_corpus(str(out), full=True)["files"] == manifest["files"]
    assert not [p for p in out.parent.iterdir() if p.name != "out"]  # no temporary directory left behind


def count_source_rows(root):
    """Rows in the fixture sources, counted here independently of the builder."""
    n = 0
    for p in root.rglob("*"):
        if p.suffix in (".jsonl", ".json"):
            text = p.read_text(encoding="utf-8")
            if text.lstrip().startswith("["):  # a JSON array: one row per item
                n += len(json.loads(text))
            else:
                n += sum(1 for x in text.splitlines() if x.strip())
        elif p.suffix == ".csv":
            with open(p, encoding="gb18030", newline="") as f:
                n += sum(1 for row in csv.reader(f) if row) - 1  # minus the header
    return n


def test_every_record_is_kept_or_skipped_for_a_counted_reason(built):
    out, stats = built
    acc = stats["accounting"]
    assert acc["rows"]["seen"] == count_source_rows(CORPUS)
    assert acc["rows"]["seen"] == acc["rows"]["kept"] + sum(acc["rows"]["skipped"].values())
    assert acc["diseases"]["read"] == acc["diseases"]["used"] + sum(acc["diseases"]["skipped"].values())
    assert acc["records"]["made"] == acc["records"]["written"] + sum(acc["records"]["skipped"].values())
    outputs = [p for d in ("cpt", "sft", "dfpo", "eval") for p in (out / d).glob("*.jsonl")]
    written = sum(sum(1 for x in p.read_text(encoding="utf-8").splitlines() if x.strip()) for p in outputs)
    assert acc["records"]["written"] == written == sum(stats["files"].values())
    levels = [acc[k]["skipped"] for k in ("rows", "diseases", "records")]
    assert stats["skipped"] == {r: sum(lv.get(r, 0) for lv in levels) for r in stats["skipped"]}
    assert sum(stats["skipped"].values()) == sum(sum(lv.values()) for lv in levels)
    assert acc["diseases"]["skipped"] == {"kg_not_pediatric": 1}  # 成人颈椎病: 骨科 only
    log = [json.loads(x) for x in (out / "skipped.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {r["reason"] for r in log} == set(stats["skipped"])
    assert all(":" in r["where"] and r["where"].split(":")[-1].isdigit() for r in log)  # path:line


def test_kg_duplicates_and_non_pediatric_diseases_are_counted(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    rows = [
        {
            "name": "小儿肺炎",
            "symptoms": ["咳嗽", "发热"],
            "departments": ["儿科"],
            "desc": "肺部感染。",
            "cause": "病原体感染。",
        },
        {"name": "小儿肺炎", "symptoms": ["咳嗽"], "departments": ["儿科"]},
        {"name": "小儿肺炎", "symptoms": ["咳嗽"], "departments": ["儿科"], "desc": "又一条。"},
        {"name": "腰椎间盘突出", "symptoms": ["腰痛"], "departments": ["骨科"], "desc": "成人常见。"},
    ]
    (src / "kg.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    stats = run_build(src, tmp_path / "out", "splits.ratios={train: 1.0, dev: 0.0, test: 0.0}")
    assert stats["accounting"]["diseases"] == {
        "read": 4,
        "used": 1,
        "skipped": {"kg_duplicate_merged": 2, "kg_not_pediatric": 1},
    }
    log = [json.loads(x) for x in (tmp_path / "out" / "skipped.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted(r["where"] for r in log if r["reason"] == "kg_duplicate_merged") == [
        f"{src}/kg.jsonl:2",
        f"{src}/kg.jsonl:3",
    ]


# -- verification: each damage is refused with one line naming the file ---------------------------------------
def cut_to_lines(path, keep):
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:keep]))


def same_size_edit(path):
    data = bytearray(path.read_bytes())
    i = data.index(b'"id": "') + len(b'"id": "')
    data[i] = ord("x") if data[i] != ord("x") else ord("y")
    path.write_bytes(bytes(data))


DAMAGES = {
    "no_manifest": (
        lambda out: (out / "manifest.json").unlink(),
        r"has no manifest\.json \(not a complete PedCorpus build",
    ),
    "cut_on_a_line_boundary": (
        lambda out: cut_to_lines(out / "sft" / "train.jsonl", 3),
        r"sft/train\.jsonl has [\d,]+ bytes, manifest\.json says [\d,]+ \(cut or changed since the build\)",
    ),
    "emptied_file": (
        lambda out: (out / "dfpo" / "train.jsonl").write_bytes(b""),
        r"dfpo/train\.jsonl has 0 bytes, manifest\.json says",
    ),
    "deleted_file": (
        lambda out: (out / "cpt" / "dev.jsonl").unlink(),
        r"cpt/dev\.jsonl is listed in manifest\.json but missing",
    ),
    "same_size_edit": (
        lambda out: same_size_edit(out / "sft" / "train.jsonl"),
        r"sft/train\.jsonl differs from manifest\.json \(sha256 changed since the build\)",
    ),
    "truncated_manifest": (
        lambda out: (out / "manifest.json").write_text(
            '{"format": "pedcorpus-manifest/1", "files": {', encoding="utf-8"
        ),
        r"manifest\.json is unreadable \(JSONDecodeError",
    ),
    "not_a_directory": (lambda out: shutil.rmtree(out), r"is not a directory"),
}


@pytest.mark.parametrize("case", sorted(DAMAGES))
def test_damaged_corpus_is_refused_with_one_line(built, tmp_path, case):
    out = fresh_copy(built, tmp_path)
    verify_corpus(str(out))
    damage, pattern = DAMAGES[case]
    damage(out)
    for reader in (
        lambda: verify_corpus(str(out)),
        lambda: sd.corpus_part(data_cfg(out), "sft", "train"),
        lambda: load_items("medkqa", str(out)),
    ):
        with pytest.raises(CorpusError, match=pattern) as e:
            reader()
        assert "\n" not in str(e.value)
        assert str(e.value).startswith(("data.root: ", "data_root: "))


def test_same_size_edit_with_the_old_mtime_needs_a_full_check(built, tmp_path):
    out = fresh_copy(built, tmp_path)
    path = out / "sft" / "train.jsonl"
    st = path.stat()
    same_size_edit(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    verify_corpus(str(out))  # sizes and record counts agree: the cheap check cannot tell
    with pytest.raises(CorpusError, match=r"sft/train\.jsonl differs from manifest\.json"):
        verify_corpus(str(out), full=True)


def test_need_and_nonempty(built, tmp_path):
    out = fresh_copy(built, tmp_path)
    with pytest.raises(CorpusError, match=r"sft/nope\.jsonl is not part of this build"):
        verify_corpus(str(out), need=["sft/nope.jsonl"])
    with pytest.raises(CorpusError, match=r"eval/cmd\.jsonl holds no records \(the build kept none"):
        verify_corpus(str(out), nonempty=["eval/cmd.jsonl"])
    verify_corpus(str(out), need=["eval/cmd.jsonl"], nonempty=["sft/train.jsonl"])


def test_hand_written_corpus_sealed_with_write_manifest_is_read(tmp_path):
    good = {
        "kind": "instruction",
        "messages": [{"role": "user", "content": "问"}, {"role": "assistant", "content": "答"}],
    }
    (tmp_path / "sft").mkdir()
    for split in ("train", "dev"):
        (tmp_path / "sft" / f"{split}.jsonl").write_text(json.dumps(good) + "\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="has no manifest.json"):
        sd.corpus_part(data_cfg(tmp_path), "sft", "train")
    write_manifest(str(tmp_path))
    assert [r.response for r in sd.corpus_part(data_cfg(tmp_path), "sft", "train")] == ["答"]


# -- an empty source, and out_dir that is not a corpus -------------------------------------------------------
def test_empty_source_fails_and_writes_nothing(tmp_path):
    (tmp_path / "src").mkdir()
    with pytest.raises(SourceError, match=r"the build kept no training record \(cpt/train\.jsonl, sft/train\.jsonl, "):
        run_build(tmp_path / "src", tmp_path / "out")
    (tmp_path / "src" / "a.jsonl").write_text('{"question": "孩子发烧怎么办？", "answer": ""}\n', encoding="utf-8")
    with pytest.raises(SourceError, match=r"1 source rows read, skipped: empty_answer: 1\); nothing written"):
        run_build(tmp_path / "src", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_out_dir_that_is_not_a_corpus_is_never_replaced(tmp_path):
    mine = tmp_path / "home"
    mine.mkdir()
    (mine / "notes.txt").write_text("precious", encoding="utf-8")
    with pytest.raises(SourceError, match=r"out_dir=.*home: exists and is not a PedCorpus build"):
        run_build(CORPUS, mine)
    assert (mine / "notes.txt").read_text(encoding="utf-8") == "precious"


# -- a crash at every step of writing and publishing leaves the old build or the new one ----------------------
class Crash(BaseException):
    """Stands for SIGKILL: nothing catches it."""


#: (where the "kill" hits, on which call, what is left at out_dir: the old build, the new one, or none)
CRASH_POINTS = [
    ("write_jsonl", 1, "old"),
    ("write_jsonl", 7, "old"),
    ("stats_write", 1, "old"),
    ("write_manifest", 1, "old"),
    ("fsync_tree", 1, "old"),
    ("exchange", 1, "old"),
    ("rmtree_after_swap", 1, "new"),
    ("rename_aside", 1, "old"),  # the two-rename fallback (no renameat2)
    ("rename_into_place", 1, "none"),
]


def arm(monkeypatch, point, nth, no_exchange):
    calls = {"n": 0}

    def crash_on_nth(real):
        def wrapper(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == nth:
                raise Crash(point)
            return real(*args, **kwargs)

        return wrapper

    if no_exchange:
        monkeypatch.setattr(publish, "_exchange", lambda a, b: False)
    if point == "write_jsonl":
        monkeypatch.setattr(build_mod, "write_jsonl", crash_on_nth(build_mod.write_jsonl))
    elif point == "stats_write":
        monkeypatch.setattr(build_mod.stats_mod, "write", crash_on_nth(build_mod.stats_mod.write))
    elif point == "write_manifest":
        monkeypatch.setattr(build_mod, "write_manifest", crash_on_nth(build_mod.write_manifest))
    elif point == "fsync_tree":
        monkeypatch.setattr(publish, "fsync_tree", crash_on_nth(publish.fsync_tree))
    elif point == "exchange":
        monkeypatch.setattr(publish, "_exchange", crash_on_nth(publish._exchange))
    elif point == "rmtree_after_swap":
        monkeypatch.setattr(publish.shutil, "rmtree", crash_on_nth(shutil.rmtree))
    elif point in ("rename_aside", "rename_into_place"):
        real = os.rename

        def rename(a, b):
            calls["n"] += 1
            if (point == "rename_aside") == (calls["n"] == 1):
                raise Crash(point)
            return real(a, b)

        monkeypatch.setattr(publish.os, "rename", rename)


@pytest.mark.parametrize("point,nth,left", CRASH_POINTS)
def test_crash_while_publishing_leaves_old_or_new_never_a_mix(built, tmp_path, monkeypatch, point, nth, left):
    out = fresh_copy(built, tmp_path)
    old = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    no_exchange = point.startswith("rename_")
    arm(monkeypatch, point, nth, no_exchange)
    with pytest.raises(Crash):
        run_build(CORPUS, out, "seed=7")  # different templates: the new build differs from the old
    monkeypatch.undo()
    if left == "none":  # only between the two renames of the fallback: no corpus, which every reader refuses
        with pytest.raises(CorpusError, match=r"is not a directory"):
            sd.corpus_part(data_cfg(out), "sft", "train")
    else:
        manifest = verify_corpus(str(out), full=True)
        assert manifest["settings"]["seed"] == {"old": 1234, "new": 7}[left]
        if left == "old":
            assert manifest["files"] == old["files"]
        assert len(sd.corpus_part(data_cfg(out), "sft", "train")) == manifest["files"]["sft/train.jsonl"]["records"]
    stats = run_build(CORPUS, out, "seed=7")  # the next build publishes over whatever is left
    assert verify_corpus(str(out), full=True)["settings"]["seed"] == 7 and stats["files"]
