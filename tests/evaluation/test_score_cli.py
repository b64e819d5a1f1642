"""`python -m pedgpt.score`: the last stdout line is one JSON object equal to the paper's code (direct library
calls in test_metrics.paper_scores) on team-written pairs; malformed lines exit 2 naming FILE:LINE."""

import json
import subprocess
import sys

import pytest
import sacrebleu

from helpers.metric_pairs import KEYS, PAIRS, mean_x100, paper_scores
from pedgpt import score

TASKS = ["medkqa", "evidiag", "trerecom"]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def records(with_groups=True):
    rows = []
    for i, (p, r) in enumerate(PAIRS):
        row = {"prediction": p, "reference": r}
        if with_groups:
            row["task"] = TASKS[i % 3]
            row["department"] = "新生儿科" if i < 4 else "儿科"
        rows.append(row)
    return rows


def run_main(capsys, *args):
    rc = score.main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def test_module_entry_point_prints_json_last(tmp_path):
    path = write_jsonl(tmp_path / "preds.jsonl", records())
    proc = subprocess.run([sys.executable, "-m", "pedgpt.score", path], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    rows = [paper_scores(p, r) for p, r in PAIRS]
    for k in KEYS:
        assert report[k] == pytest.approx(mean_x100(rows, k), abs=1e-6), k
    assert report["n"] == len(PAIRS)
    assert "rouge1" in proc.stderr  # the table goes to stderr


def test_groups_ci_and_convention(tmp_path, capsys):
    path = write_jsonl(tmp_path / "preds.jsonl", records())
    rc, out, err = run_main(capsys, path, "--bootstrap", "200", "--workers", "1")
    assert rc == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    rows = [paper_scores(p, r) for p, r in PAIRS]
    assert set(report["by_task"]) == set(TASKS)
    for t in TASKS:
        group = [row for i, row in enumerate(rows) if TASKS[i % 3] == t]
        assert report["by_task"][t]["n"] == len(group)
        for k in KEYS:
            assert report["by_task"][t][k] == pytest.approx(mean_x100(group, k), abs=1e-6), (t, k)
    assert report["by_department"]["新生儿科"]["n"] == 4
    assert report["by_department"]["儿科"]["gleu"] == pytest.approx(mean_x100(rows[4:], "gleu"), abs=1e-6)
    assert set(report["ci95"]) == set(KEYS)
    for k in KEYS:
        low, high = report["ci95"][k]
        assert low <= report[k] <= high, k
    assert "jieba" in report["convention"] and "paper" in report["convention"]
    assert "sacrebleu" not in report


def test_char_tokenizer_and_sacrebleu_convention(tmp_path, capsys):
    path = write_jsonl(tmp_path / "preds.jsonl", records(with_groups=False))
    rc, out, _ = run_main(capsys, path, "--tokenizer", "char", "--convention", "sacrebleu", "--bootstrap", "50")
    assert rc == 0
    report = json.loads(out.strip().splitlines()[-1])
    rows = [paper_scores(p, r, cut=list) for p, r in PAIRS]
    for k in KEYS:
        assert report[k] == pytest.approx(mean_x100(rows, k), abs=1e-6), k
    preds, refs = [p for p, _ in PAIRS], [r for _, r in PAIRS]
    assert report["sacrebleu"] == pytest.approx(sacrebleu.corpus_bleu(preds, [refs], tokenize="zh").score, abs=1e-6)
    assert report["ci95"]["sacrebleu"][0] <= report["sacrebleu"] <= report["ci95"]["sacrebleu"][1]
    assert "by_task" not in report and "by_department" not in report
    assert "character tokens" in report["convention"] and "tokenize=zh" in report["convention"]


def test_empty_rules(tmp_path, capsys):
    rows = records(with_groups=False) + [{"prediction": "", "reference": PAIRS[0][1]}]
    path = write_jsonl(tmp_path / "preds.jsonl", rows)
    scored = [paper_scores(p, r) for p, r in PAIRS]
    _, out, _ = run_main(capsys, path)
    zero = json.loads(out.strip().splitlines()[-1])
    assert zero["rougeL"] == pytest.approx(mean_x100(scored + [{"rougeL": 0.0}], "rougeL"), abs=1e-6)
    _, out, _ = run_main(capsys, path, "--empty", "skip_rouge")
    skip = json.loads(out.strip().splitlines()[-1])
    assert skip["rougeL"] == pytest.approx(mean_x100(scored, "rougeL"), abs=1e-6)
    assert skip["gleu"] == pytest.approx(zero["gleu"], abs=1e-9) and skip["n"] == zero["n"] == len(PAIRS) + 1
    assert "left out of the ROUGE means" in skip["convention"]


def test_parallel_workers_give_identical_numbers(tmp_path, capsys):
    path = write_jsonl(tmp_path / "preds.jsonl", records() * 7)  # ≥ 64 pairs → a process pool
    _, one, _ = run_main(capsys, path, "--workers", "1")
    _, two, _ = run_main(capsys, path, "--workers", "2")
    assert json.loads(one.strip().splitlines()[-1]) == json.loads(two.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "line,reason",
    [
        ('{"prediction": "发烧", "reference": ', "invalid JSON"),
        ('{"prediction": "发烧"}', "missing field 'reference'"),
        ('{"prediction": 3, "reference": "发热"}', "field 'prediction' must be a string"),
        ('["发烧", "发热"]', "expected a JSON object"),
        ('{"prediction": "发烧", "reference": "发热", "task": 1}', "field 'task' must be a string or null"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, capsys, line, reason):
    good = json.dumps({"prediction": PAIRS[0][0], "reference": PAIRS[0][1]}, ensure_ascii=False)
    path = tmp_path / "bad.jsonl"
    path.write_text(f"{good}\n\n{line}\n{good}\n", encoding="utf-8")
    rc, out, err = run_main(capsys, str(path))
    assert rc == 2 and out == ""
    assert err.strip().splitlines() == [err.strip()]
    assert err.startswith(f"{path}:3: ") and reason in err


def test_missing_and_empty_files(tmp_path, capsys):
    rc, _, err = run_main(capsys, str(tmp_path / "nope.jsonl"))
    assert rc == 2 and err.startswith(f"{tmp_path / 'nope.jsonl'}: ")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    rc, _, err = run_main(capsys, str(empty))
    assert rc == 2 and err.strip() == f"{empty}: no records"


def test_null_department_is_left_out_of_groups(tmp_path, capsys):
    rows = [
        {"prediction": PAIRS[0][0], "reference": PAIRS[0][1], "department": None},
        {"prediction": PAIRS[1][0], "reference": PAIRS[1][1], "department": "儿科"},
    ]
    _, out, _ = run_main(capsys, write_jsonl(tmp_path / "p.jsonl", rows))
    report = json.loads(out.strip().splitlines()[-1])
    assert report["n"] == 2 and list(report["by_department"]) == ["儿科"]
    assert report["by_department"]["儿科"]["n"] == 1
    assert report["by_department"]["儿科"]["gleu"] == pytest.approx(100 * paper_scores(*PAIRS[1])["gleu"], abs=1e-6)
