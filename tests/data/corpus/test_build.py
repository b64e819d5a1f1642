"""End-to-end PedCorpus builds: the fixture corpus (hand-written) and, when present, the shared data."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import FIXTURES, ROOT
from helpers.corpus import run_build, shared_data_dir
from pedgpt.data.schema import read_jsonl

CORPUS = FIXTURES / "corpus"
LAYOUT = [
    "cpt/train.jsonl",
    "cpt/dev.jsonl",
    "sft/train.jsonl",
    "sft/dev.jsonl",
    "dfpo/train.jsonl",
    "dfpo/dev.jsonl",
    "stats.json",
    "stats.md",
    "stats.png",
] + [f"eval/{s}.jsonl" for s in ("medkqa", "evidiag", "trerecom", "cmd", "webmedqa", "cmmlu_med", "preference")]


def cli(source, out, *overrides):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pedgpt.data.build",
            f"source_dir={source}",
            f"out_dir={out}",
            "progress=false",
            *overrides,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )


def records(out, rel):
    return list(read_jsonl(str(Path(out) / rel)))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus") / "out"
    proc = cli(CORPUS, out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def test_layout_and_hydra_files_in_out_dir(built):
    for rel in LAYOUT:
        assert (built / rel).is_file(), rel
    assert (built / ".hydra" / "config.yaml").is_file()


def test_stats_count_kept_records(built):
    s = json.loads((built / "stats.json").read_text(encoding="utf-8"))
    written = {rel: len(records(built, rel)) for rel in LAYOUT if rel.endswith(".jsonl")}
    assert sum(s["tasks"].values()) == sum(n for rel, n in written.items() if not rel.startswith("cpt/"))
    assert s["sources"]["cmd"] == 4  # 3 GB18030 CSV rows + 1 CMD row in a consultation file
    assert s["sources"]["webmedqa"] == 2 and s["tasks"]["medkqa"] > 0 and s["tasks"]["trerecom"] > 0
    assert s["skipped"]["identical_pair"] == 1 and s["skipped"]["empty_answer"] == 1
    assert s["skipped"]["case_without_symptoms"] == 1


def test_every_sft_record_has_task_and_eval_items_are_test(built):
    for rel in ("sft/train.jsonl", "sft/dev.jsonl"):
        assert all(r.task and r.kind == "instruction" for r in records(built, rel))
    web = records(built, "eval/webmedqa.jsonl")
    assert len(web) == 2 and all(r.reference is None and r.split == "test" for r in web)
    (mcq_a, mcq_b) = records(built, "eval/cmmlu_med.jsonl")
    assert {mcq_a.answer, mcq_b.answer} == {1, 2}
    # the upstream test split of the CMtMedQA dialogue and the MZ-10 case are evaluation data
    assert any(r.id == "fx-mz-002" for r in records(built, "eval/evidiag.jsonl"))
    assert any(r.id == "fx-pref-002" for r in records(built, "eval/preference.jsonl"))


def test_kg_disease_never_straddles_splits(built):
    where = {}
    for rel in LAYOUT:
        if rel.endswith(".jsonl"):
            for r in records(built, rel):
                disease = getattr(r, "meta", {}).get("disease")
                if disease:
                    where.setdefault(disease, set()).add(r.split)
    assert where["小儿疱疹性咽峡炎"] == {"test"}  # its KG record says test
    assert "成人颈椎病" not in where  # not a pediatric department: table only
    assert all(len(s) == 1 for s in where.values()), where


def test_rebuild_is_byte_identical(built, tmp_path):
    again = tmp_path / "again"
    run_build(CORPUS, again)
    for rel in LAYOUT:
        if rel.endswith((".jsonl", ".json")):
            assert (built / rel).read_bytes() == (again / rel).read_bytes(), rel


def test_adding_data_moves_no_record(built, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(CORPUS, src)
    extra = [
        {
            "id": f"fx-new-{i}",
            "src": "ChatMed:new",
            "question": f"新问题{i}：孩子打喷嚏流鼻涕怎么办？",
            "answer": f"第{i}个回答：注意保暖，多休息，观察体温变化。",
        }
        for i in range(30)
    ]
    (src / "qa" / "more.jsonl").write_text(
        "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in extra), encoding="utf-8"
    )
    run_build(src, tmp_path / "out")
    for rel in LAYOUT:
        if rel.endswith(".jsonl"):
            before = {r.id for r in records(built, rel)}
            after = {r.id for r in records(tmp_path / "out", rel)}
            assert before <= after, rel


def test_broken_line_fails_with_one_line_or_is_skipped(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(CORPUS, src)
    target = src / "qa" / "consult_pediatric.jsonl"
    n = len(target.read_text(encoding="utf-8").splitlines()) + 1
    with open(target, "a", encoding="utf-8") as f:
        f.write('{"id": "broken", "question": "孩子\n')
    proc = cli(src, tmp_path / "bad")
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"consult_pediatric.jsonl:{n}: malformed JSON" in lines[0], proc.stderr
    stats = run_build(src, tmp_path / "skip", "skip_invalid=true")
    assert stats["skipped"]["malformed_json"] == 1


@pytest.mark.shared_data
@pytest.mark.slow
@pytest.mark.skipif(shared_data_dir() is None, reason="needs ../shared/data or PEDGPT_DATA_DIR")
def test_shared_data_build(shared_corpus):
    out, s = shared_corpus
    assert all(s["tasks"][t] >= 500 for t in ("medkqa", "evidiag", "trerecom")), s["tasks"]
    assert s["sources"]["cmd"] >= 2000
    train = {r.id for r in records(out, "sft/train.jsonl")}
    for suite in ("medkqa", "evidiag", "trerecom", "cmd"):
        assert not train & {r.id for r in records(out, f"eval/{suite}.jsonl")}, suite
