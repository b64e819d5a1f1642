import pytest

from pedgpt.data.schema import Instruction, PretrainText
from pedgpt.data.stage_data import hybrid_cpt_texts, repeat_by_source

TEXTS = [PretrainText(text=f"a{i}", source="a") for i in range(10)] + [
    PretrainText(text=f"b{i}", source="b") for i in range(4)
]
INSTR = [
    Instruction(messages=[{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"r{i}"}])
    for i in range(20)
]


def test_source_epochs_repeat_and_subsample():
    out = repeat_by_source(TEXTS, {"a": 0.5, "b": 2}, seed=0)
    assert sum(r.source == "a" for r in out) == 5 and len({r.text for r in out if r.source == "a"}) == 5
    assert sum(r.source == "b" for r in out) == 8
    assert [r.text for r in repeat_by_source(TEXTS, {"b": 0}, seed=0)] == [f"a{i}" for i in range(10)]
    with pytest.raises(ValueError, match="source_epochs.a"):
        repeat_by_source(TEXTS, {"a": -1}, seed=0)


def test_instruction_ratio_of_the_mixture():
    docs, mix = hybrid_cpt_texts(
        TEXTS, INSTR, 0.3, lambda r: "I:" + r.messages[0].content, seed=1, source_epochs={"b": 2}
    )
    assert mix == {"plain_docs": 18, "instruction_docs": round(0.3 * 18 / 0.7)}  # 10 + 2×4 plain documents
    assert sum(d.startswith("I:") for d in docs) == mix["instruction_docs"]
