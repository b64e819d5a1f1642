"""CMD department CSVs (GB18030 / UTF-8) and CMD JSONL rows."""

from collections import Counter

import pytest

from helpers import FIXTURES
from pedgpt.data.corpus.sources import Context, SourceError, Unusable
from pedgpt.data.corpus.sources.cmd_csv import convert, detect, detect_encoding, read_csv_rows

FIX = FIXTURES / "corpus" / "raw" / "cmd_pediatrics_gb18030.csv"


def test_fixture_is_really_gb18030():
    data = FIX.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    assert detect_encoding(data) == "gb18030"


def test_reads_gb18030_and_converts():
    rows = list(read_csv_rows(str(FIX)))
    assert [line for line, _ in rows] == [2, 3, 4]
    assert rows[0][1]["title"] == "孩子夜里磨牙怎么办"
    recs = convert(rows[0][1], Context(path=str(FIX)))
    assert len(recs) == 1 and recs[0].source == "cmd" and recs[0].task == "consult"
    assert recs[0].messages[0].content == "孩子夜里磨牙怎么办\n五岁男孩每天夜里磨牙，声音很响，需要治疗吗？"
    assert recs[0].messages[1].content.startswith("偶尔磨牙多与白天兴奋")
    assert recs[0].meta["department"] == "小儿内科"


def test_utf8_copy_and_encoding_override(tmp_path):
    text = FIX.read_bytes().decode("gb18030")
    utf8 = tmp_path / "copy.csv"
    utf8.write_text(text, encoding="utf-8")
    assert [r["title"] for _, r in read_csv_rows(str(utf8))] == [r["title"] for _, r in read_csv_rows(str(FIX))]
    # forcing the wrong encoding names the first non-ASCII line (the header is ASCII)
    with pytest.raises(SourceError, match=r"cmd_pediatrics_gb18030.csv:2: undecodable bytes for utf-8"):
        list(read_csv_rows(str(FIX), encoding="utf-8"))
    assert len(list(read_csv_rows(str(FIX), encoding="gb18030"))) == 3


def test_missing_column_names_file_and_line(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("department,title,ask,answer\n儿科,标题一,问题一,回答一\n儿科,只有标题\n", encoding="utf-8")
    with pytest.raises(SourceError, match=r"bad.csv:3: CSV row has 2 columns, expected 4"):
        list(read_csv_rows(str(p)))
    skipped = Counter()
    rows = list(read_csv_rows(str(p), skip_invalid=True, skipped=skipped))
    assert len(rows) == 1 and skipped == {"bad_csv_row": 1}


def test_undecodable_line_is_reported_or_skipped(tmp_path):
    p = tmp_path / "broken.csv"
    good = "department,title,ask,answer\n儿科,标题,问题,回答\n".encode("gb18030")
    p.write_bytes(good + b"\xff\xfe\xff,x,y,z\n" + "儿科,标题二,问题二,回答二\n".encode("gb18030"))
    with pytest.raises(SourceError, match=r"broken.csv:3: undecodable bytes"):
        list(read_csv_rows(str(p)))
    skipped = Counter()
    rows = list(read_csv_rows(str(p), skip_invalid=True, skipped=skipped))
    assert [r["title"] for _, r in rows] == ["标题", "标题二"] and skipped == {"undecodable": 1}


def test_jsonl_row_and_empty_answer():
    row = {
        "id": "c1",
        "src": "Chinese-medical-dialogue-data:样例.csv",
        "title": "宝宝湿疹",
        "question": "宝宝湿疹\n脸上起红疹怎么办",
        "answer": "保湿为主",
        "department": "儿科",
        "split": "dev",
    }
    assert detect(set(row))
    (rec,) = convert(row, Context(path="a/cmd.jsonl"))
    assert (rec.id, rec.source, rec.split) == ("c1", "cmd", "dev")
    assert rec.messages[0].content == "宝宝湿疹\n脸上起红疹怎么办"
    with pytest.raises(Unusable) as e:
        convert({**row, "answer": "  "}, Context(path="a/cmd.jsonl"))
    assert e.value.reason == "empty_answer"
