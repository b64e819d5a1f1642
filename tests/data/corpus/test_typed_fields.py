"""Typed fields: every converter accepts only the JSON types its format allows.

A bad value (boolean, number or object where text belongs, NaN / Infinity, a role outside the format's
vocabulary) stops the build with ``path:line: field …`` or, with ``skip_invalid``, is a skip counted under
``bad_type:<field>`` / ``bad_role:<field>`` whose place is in the skip log. It never becomes text. The
single cases (``tests/fixtures/bad_inputs/typed_fields.jsonl``) are in the bad-input suite; here they go
through whole builds.
"""

import json
import shutil

import pytest
from hydra import compose as hydra_compose
from hydra import initialize_config_dir

from helpers import CONF, FIXTURES
from helpers.corpus import run_build
from pedgpt.data.corpus.build import convert_file
from pedgpt.data.corpus.skips import SkipLog
from pedgpt.data.corpus.sources import SourceError

Q = "孩子发烧三天怎么办？"
A = "多喝水，观察精神状态。"
#: the typed-field cases of the bad-input suite: case, format, a good and a bad line (raw JSON), message, reason
CASES = [
    json.loads(x) for x in (FIXTURES / "bad_inputs" / "typed_fields.jsonl").read_text(encoding="utf-8").splitlines()
]


def build_cfg(*overrides):
    with initialize_config_dir(version_base="1.3", config_dir=CONF):
        return hydra_compose(
            config_name="build", overrides=["source_dir=/unused", "out_dir=/unused", "progress=false", *overrides]
        )


def test_null_means_absent_not_the_text_none(tmp_path):
    path = tmp_path / "consult.jsonl"
    rows = [{"question": Q, "answer": None, "department": None}, {"question": Q, "answer": A, "department": None}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    skipped = SkipLog()
    (r,) = convert_file(str(path), build_cfg(), skipped)
    assert dict(skipped) == {"empty_answer": 1} and "department" not in r.meta
    assert "None" not in json.dumps([m.content for m in r.messages], ensure_ascii=False)


def test_no_hostile_value_reaches_a_built_corpus(tmp_path):
    """Every case above, in one source next to the fixture corpus: with skip_invalid the build skips and
    counts each, lists its place in skipped.jsonl, and no output line holds the hostile rows' marker."""
    src = tmp_path / "src"
    shutil.copytree(FIXTURES / "corpus", src)
    hostile = src / "hostile"
    hostile.mkdir()
    marker = "敌意标记"
    marked = 0
    for c in CASES:
        text = c["bad"]
        for words in (Q, A, "小儿肺炎", "哪个是维生素？", "孩子咳嗽两天"):
            text = text.replace(words, marker + words)
        marked += marker in text
        (hostile / f"{c['case']}.jsonl").write_text(text + "\n", encoding="utf-8")
    assert marked == len(CASES) - 1  # all but {"text": 12.5}, which holds no text to mark
    with pytest.raises(SourceError, match=r"hostile/\w+\.jsonl:1: field '"):
        run_build(src, tmp_path / "strict")
    assert not (tmp_path / "strict").exists()
    out = tmp_path / "out"
    stats = run_build(src, out, "skip_invalid=true")
    want = {}
    for c in CASES:
        want[c["reason"]] = want.get(c["reason"], 0) + 1
    assert {k: v for k, v in stats["skipped"].items() if k.startswith("bad_")} == want
    logged = [json.loads(x) for x in (out / "skipped.jsonl").read_text(encoding="utf-8").splitlines()]
    places = {row["where"] for row in logged if row["reason"].startswith("bad_")}
    assert places == {f"{hostile / c['case']}.jsonl:1" for c in CASES}
    for f in out.rglob("*.jsonl"):
        assert marker not in f.read_text(encoding="utf-8"), f
