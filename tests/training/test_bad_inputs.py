"""Bad input, every kind: each case stops with one clear message (file:line or config key) or is a counted skip.

The table in tests/README.md lists these cases one to one (case id → expected behaviour); keep both in sync.
"""

import json
import os
import subprocess
import sys
from collections import Counter

import pytest
import torch
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import open_dict

from helpers import CONF, FIXTURES, ROOT, compose
from pedgpt.common.errors import CheckpointError, ConfigError, DataError
from pedgpt.data.corpus.build import convert_file
from pedgpt.data.corpus.clean import Limits, clean_record
from pedgpt.data.corpus.manifest import CorpusError, verify_corpus, write_manifest
from pedgpt.data.corpus.skips import SkipLog
from pedgpt.data.corpus.sources import SourceError, Unusable, detect_format, read_rows
from pedgpt.data.encode import encode_instructions, encode_pairs, encode_texts
from pedgpt.data.schema import Instruction, Message, PreferencePair, RecordError, read_jsonl
from pedgpt.data.templates import get_template
from pedgpt.training.checkpointing import checkpoint_step, verify_checkpoint
from pedgpt.training.validate import validate

UTF8 = "宝宝发烧三天，精神尚可。"
GBK = "宝宝咳嗽".encode("gbk")


def write(path, data):
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return str(path)


def lines(*objs):
    return "".join((o if isinstance(o, str) else json.dumps(o, ensure_ascii=False)) + "\n" for o in objs)


def build_cfg(*overrides):
    with initialize_config_dir(version_base="1.3", config_dir=CONF):
        return hydra_compose(config_name="build", overrides=["source_dir=/unused", "out_dir=/unused", *overrides])


def rows(path, skip_invalid=False):
    skipped = Counter()
    out = list(read_rows(path, {}, skip_invalid, skipped))
    return out, dict(skipped)


CONSULT = {"question": "孩子夜里咳嗽怎么办？", "answer": "先观察体温和呼吸。"}
CSV_HEADER = "department,title,ask,answer\n"
CSV_ROW = "儿科,咳嗽,孩子咳嗽两天,多喝水观察\n"


# == data files read by the PedCorpus builder: one line `path:line: reason`, or counted with skip_invalid ==
DATA_ERRORS = {
    "jsonl_malformed_json": (
        "a.jsonl",
        lines(CONSULT, '{"question": "缺引号}'),
        ":2: malformed JSON (Unterminated string",
    ),
    "jsonl_wrong_encoding": (
        "a.jsonl",
        lines(CONSULT).encode() + b'{"question": "' + GBK + b'"}\n',
        ":2: undecodable bytes for utf-8 (invalid",
    ),
    "jsonl_line_not_an_object": ("a.jsonl", lines(CONSULT, [1, 2]), ":2: line is not a JSON object"),
    "json_array_malformed": ("a.json", '[\n{"question": "q", "answer": "a"},\n{"question": }\n]', ":3: malformed JSON"),
    "json_array_item_not_an_object": (
        "a.json",
        '[{"question": "q", "answer": "a"}, "text"]',
        ":2: item is not a JSON object",
    ),
    "csv_missing_column": (
        "a.csv",
        CSV_HEADER + CSV_ROW + "儿科,发烧,孩子发烧\n",
        ":3: CSV row has 3 columns, expected 4 (department,title,ask,answer)",
    ),
    "csv_wrong_encoding": (
        "a.csv",
        (CSV_HEADER + CSV_ROW).encode() + "儿科,咳嗽,".encode("gbk") + b"\xff\xfe,x\n",
        ":3: undecodable bytes for utf-8-sig (invalid start byte",
    ),
    "jsonl_nested_too_deeply": (
        "a.jsonl",
        lines(CONSULT) + '{"question": ' + "[" * 100_000 + "]" * 100_000 + "}\n",
        ":2: malformed JSON (nested too deeply)",
    ),
    "json_array_nested_too_deeply": ("a.json", "[" * 100_000 + "]" * 100_000, ":1: malformed JSON (nested too deeply)"),
}


@pytest.mark.parametrize("case", sorted(DATA_ERRORS))
def test_bad_data_file_names_file_and_line(tmp_path, case):
    name, data, fragment = DATA_ERRORS[case]
    path = write(tmp_path / name, data)
    with pytest.raises(SourceError) as e:
        rows(path)
    assert str(e.value).startswith(path + fragment), str(e.value)


DATA_SKIPS = {
    "jsonl_nested_too_deeply": {"malformed_json": 1},
    "jsonl_malformed_json": {"malformed_json": 1},
    "jsonl_wrong_encoding": {"undecodable": 1},
    "jsonl_line_not_an_object": {"not_an_object": 1},
    "csv_missing_column": {"bad_csv_row": 1},
}


@pytest.mark.parametrize("case", sorted(DATA_SKIPS))
def test_bad_data_lines_are_counted_with_skip_invalid(tmp_path, case):
    name, data, _ = DATA_ERRORS[case]
    good, skipped = rows(write(tmp_path / name, data), skip_invalid=True)
    assert skipped == DATA_SKIPS[case]
    assert len(good) == 1


def test_utf8_bom_at_the_start_of_a_jsonl_file_is_dropped(tmp_path):
    path = write(tmp_path / "a.jsonl", b"\xef\xbb\xbf" + lines(CONSULT, CONSULT).encode())
    good, skipped = rows(path)
    assert skipped == {} and [row for _, row in good] == [CONSULT, CONSULT]


# == typed fields of source records: `path:line: field …`, or counted with skip_invalid ===================
TYPED = {
    c["case"]: c
    for c in map(json.loads, (FIXTURES / "bad_inputs" / "typed_fields.jsonl").read_text(encoding="utf-8").splitlines())
}


def typed_source(tmp_path, case):
    c = TYPED[case]
    return write(tmp_path / f"{c['format']}.jsonl", c["good"] + "\n" + c["bad"] + "\n")


@pytest.mark.parametrize("case", sorted(TYPED))
def test_bad_source_value_names_file_line_and_field(tmp_path, case):
    path = typed_source(tmp_path, case)
    with pytest.raises(SourceError) as e:
        convert_file(path, build_cfg("progress=false"), SkipLog())
    assert str(e.value) == f"{path}:2: {TYPED[case]['message']}"


def test_bad_source_values_are_counted_with_skip_invalid(tmp_path):
    for case, c in sorted(TYPED.items()):
        (tmp_path / case).mkdir()
        path = typed_source(tmp_path / case, case)
        skipped = SkipLog()
        out = convert_file(path, build_cfg("progress=false", "skip_invalid=true"), skipped)
        assert dict(skipped) == {c["reason"]: 1} and len(out) == 1, case  # the good line is kept
        assert skipped.examples[c["reason"]] == [{"where": f"{path}:2", "detail": c["message"]}], case


def test_unrecognised_record_format_names_the_keys(tmp_path):
    path = write(tmp_path / "a.jsonl", lines({"foo": 1}))
    with pytest.raises(SourceError, match=rf"^{path}:1: unrecognised record format \(keys \['foo'\]\)"):
        detect_format({"foo": 1}, path)


def test_unknown_format_in_the_formats_mapping():
    with pytest.raises(SourceError, match=r"^unknown format 'nosuch'; known: benchmark, cmd_csv"):
        detect_format(CONSULT, "/x/a.jsonl", {"*.jsonl": "nosuch"})


BUILDER_SKIPS = {
    "csv_empty_answer": ("a.csv", CSV_HEADER + CSV_ROW + "儿科,发烧,孩子发烧怎么办,\n", {"empty_answer": 1}, 1),
    "preference_identical_chosen_rejected": (
        "pairs.jsonl",
        lines(
            {"prompt": "孩子发烧怎么办", "chosen": "先测体温", "rejected": "先测体温"},
            {"prompt": "孩子发烧怎么办", "chosen": "先测体温", "rejected": "不用管"},
        ),
        {"identical_pair": 1},
        1,
    ),
    "preference_empty_prompt": (
        "pairs.jsonl",
        lines({"prompt": " ", "chosen": "a", "rejected": "b"}),
        {"empty_prompt": 1},
        0,
    ),
}


@pytest.mark.parametrize("case", sorted(BUILDER_SKIPS))
def test_unusable_source_records_are_counted_by_reason(tmp_path, case):
    name, data, want, kept = BUILDER_SKIPS[case]
    skipped = Counter()
    out = convert_file(write(tmp_path / name, data), build_cfg("progress=false"), skipped)
    assert dict(skipped) == want and len(out) == kept


def test_schema_rejected_source_record_names_file_and_line(tmp_path):
    path = write(tmp_path / "sft.jsonl", lines({"instruction": "问题", "output": "答案"}))
    cfg = build_cfg("progress=false", "+sources.tasks_by_source.sft=surgery")  # maps this file to a bad task
    with pytest.raises(
        SourceError, match=rf"^{path}:1: invalid instructions record \(RecordError: unknown task 'surgery'"
    ):
        convert_file(path, cfg, Counter())


def test_absurdly_long_message_is_skipped_as_too_long():
    rec = Instruction(messages=[Message("user", "孩子发烧"), Message("assistant", "多" * 5000)], task="medkqa")
    with pytest.raises(Unusable) as e:
        clean_record(rec, Limits(max_message_chars=4000))
    assert e.value.reason == "too_long"


# == stage corpus files (read_jsonl): RecordError `file:line: reason` ==================================
INSTR = {
    "kind": "instruction",
    "task": "medkqa",
    "messages": [{"role": "user", "content": "问"}, {"role": "assistant", "content": "答"}],
}
RECORD_ERRORS = {
    "malformed_json": (lines(INSTR, '{"kind" "instruction"}'), ":2: Expecting ':' delimiter: line 1 column 9 (char 8)"),
    "unknown_task": (
        lines({**INSTR, "task": "surgery"}),
        ":1: unknown task 'surgery'; known tasks: medkqa, evidiag, trerecom, consult, general",
    ),
    "missing_required_field": (
        lines({"kind": "preference", "prompt": [{"role": "user", "content": "问"}], "rejected": "x"}),
        ":1: preference record: PreferencePair.__init__() missing 1 required positional argument: 'chosen'",
    ),
    "unknown_field": (lines({**INSTR, "answer": "x"}), ":1: unknown field(s) ['answer'] for a instruction record"),
    "missing_kind": (
        lines({k: v for k, v in INSTR.items() if k != "kind"}),
        ":1: unknown record kind None; known: pretrain, instruction, preference, eval, disease",
    ),
    "unknown_role": (
        lines({**INSTR, "messages": [{"role": "doctor", "content": "答"}]}),
        ":1: message role 'doctor' is not one of ('system', 'user', 'assistant')",
    ),
    "no_final_answer": (
        lines({**INSTR, "messages": [{"role": "user", "content": "问"}]}),
        ":1: instruction must end with an assistant message",
    ),
    "empty_message_list": (lines({**INSTR, "messages": []}), ":1: instruction must end with an assistant message"),
    "content_true": (
        lines({**INSTR, "messages": [{"role": "user", "content": "问"}, {"role": "assistant", "content": True}]}),
        ":1: message content must be a string, got bool (true)",
    ),
    "content_null": (
        lines({**INSTR, "messages": [{"role": "user", "content": "问"}, {"role": "assistant", "content": None}]}),
        ":1: message content must be a string, got null",
    ),
    "message_not_an_object": (
        lines({**INSTR, "messages": ["问", "答"]}),
        ":1: messages[0] must be an object with `role` and `content`, got text",
    ),
    "assistant_only_instruction": (
        lines({**INSTR, "messages": [{"role": "assistant", "content": "答"}]}),
        ":1: instruction messages must alternate user/assistant from a user turn: message 0 is assistant",
    ),
    "system_turn_in_messages": (
        lines({**INSTR, "messages": [{"role": "system", "content": "你是医生"}, *INSTR["messages"]]}),
        ":1: put the system prompt in `system`, not in `messages`",
    ),
    "pretrain_text_number": (
        lines({"kind": "pretrain", "text": 3}),
        ":1: field 'text' of a pretrain record must be text, got number (3)",
    ),
    "chosen_object": (
        lines({"kind": "preference", "prompt": INSTR["messages"][:1], "chosen": {"text": "x"}, "rejected": "y"}),
        ":1: field 'chosen' of a preference record must be text, got object",
    ),
    "nan_token": (
        '{"kind": "pretrain", "text": NaN}\n',
        ":1: NaN is not a JSON value (non-finite numbers are not allowed)",
    ),
    "unknown_split": (
        lines({**INSTR, "split": "validation"}),
        ":1: field 'split' must be one of train, dev, test or null, got 'validation'",
    ),
    "lone_surrogate": (
        lines(INSTR).replace('"答"', '"答\\udc00"'),
        ":1: messages[1].content holds invalid Unicode (a lone surrogate)",
    ),
    "nested_too_deeply": (
        '{"kind": "pretrain", "text": ' + "[" * 100_000 + "]" * 100_000 + "}\n",
        ":1: JSON nested too deeply",
    ),
}


@pytest.mark.parametrize("case", sorted(RECORD_ERRORS))
def test_bad_stage_corpus_record_names_file_and_line(tmp_path, case):
    data, fragment = RECORD_ERRORS[case]
    path = write(tmp_path / "train.jsonl", data)
    with pytest.raises(RecordError) as e:
        list(read_jsonl(path))
    assert str(e.value) == path + fragment


def test_stage_corpus_in_a_wrong_encoding_names_file_and_line(tmp_path):
    path = write(tmp_path / "train.jsonl", lines(INSTR).encode() + lines(INSTR).replace("答", "咳").encode("gbk"))
    with pytest.raises(RecordError, match=rf"^{path}:2: "):
        list(read_jsonl(path))


def test_stage_corpus_with_a_utf8_bom_reads(tmp_path):
    path = write(tmp_path / "train.jsonl", b"\xef\xbb\xbf" + lines(INSTR, INSTR).encode())
    assert [r.response for r in read_jsonl(path)] == ["答", "答"]


def test_hostile_stage_corpus_fails_before_the_tokenizer_is_trained(tmp_path):
    from pedgpt.training.init_export import tokenizer_texts

    bad = {**INSTR, "messages": [{"role": "user", "content": "问"}, {"role": "assistant", "content": True}]}
    files = {**SFT_FILES, "sft/train.jsonl": lines(INSTR, bad), "cpt/train.jsonl": "", "dfpo/train.jsonl": ""}
    root = corpus(tmp_path, **files)
    with pytest.raises(RecordError, match=rf"^{root}/sft/train.jsonl:2: message content must be a string, got bool"):
        tokenizer_texts(compose([f"data.root={root}"]))


def test_instruction_without_task_reads_as_general(tmp_path):
    path = write(tmp_path / "train.jsonl", lines({k: v for k, v in INSTR.items() if k != "task"}))
    assert [r.task for r in read_jsonl(path)] == ["general"]


# == encoding for training: counted skips, never silent drops ==========================================
def pair(chosen, rejected, prompt="孩子发烧怎么办？"):
    return PreferencePair(prompt=[Message("user", prompt)], chosen=chosen, rejected=rejected, task="medkqa")


PAIR_SKIPS = {
    "identical_chosen_rejected": (pair("多喝水，观察体温。", " 多喝水，观察体温。 "), {"identical_chosen_rejected": 1}),
    "empty_chosen": (pair("  ", "不用管。"), {"empty_answer": 1}),
    "empty_rejected": (pair("多喝水。", ""), {"empty_answer": 1}),
    "pair_longer_than_max_len": (pair("多喝水" * 200, "不用管。"), {"pair_longer_than_max_len": 1}),
}


@pytest.mark.parametrize("case", sorted(PAIR_SKIPS))
def test_bad_preference_pairs_are_counted(tiny_tokenizer, case):
    bad, want = PAIR_SKIPS[case]
    skipped = Counter()
    out = encode_pairs(
        [bad, pair("多喝水。", "不用管。")], tiny_tokenizer, get_template("human_assistant"), 64, skipped
    )
    assert dict(skipped) == want and len(out) == 1


def test_instruction_whose_answer_cannot_fit_is_counted(tiny_tokenizer):
    long = Instruction(messages=[Message("user", "问"), Message("assistant", "多喝水" * 200)], task="medkqa")
    short = Instruction(messages=[Message("user", "问"), Message("assistant", "多喝水")], task="medkqa")
    skipped = Counter()
    out = encode_instructions([long, short], tiny_tokenizer, get_template("human_assistant"), 64, skipped)
    assert dict(skipped) == {"answer_longer_than_max_len": 1} and len(out) == 1


def test_absurdly_long_pretraining_text_is_split_into_max_len_windows(tiny_tokenizer):
    out = encode_texts([UTF8 * 400], tiny_tokenizer, 64)
    assert len(out) > 10 and all(len(e["input_ids"]) <= 64 for e in out)


def test_unknown_chat_template():
    with pytest.raises(
        KeyError, match=r"unknown chat template 'chatml_nope'; registered: baichuan2, chatml, human_assistant"
    ):
        get_template("chatml_nope")


# == configs: ConfigError naming the key, before any model is built ====================================
CONFIG_ERRORS = {
    "wrong_type": (
        ["sft.batch_size=eight"],
        r"^config key `sft.batch_size`: Value 'eight' of type 'str' could not be converted to Integer",
    ),
    "non_positive_batch_size": (["sft.batch_size=0"], r"^sft.batch_size: must be a whole number >= 1, got 0$"),
    "max_len_above_model_limit": (
        ["sft.max_len=4096"],
        r"^sft.max_len: 4096 exceeds the model's limit model.arch.max_position_embeddings=1024$",
    ),
    "unknown_stage": (
        ["pipeline=[sft,rlhf]"],
        r"^pipeline: unknown stage 'rlhf'; registered stages: cpt, dfpo, lora_baseline, mole, sft",
    ),
    "empty_pipeline": (["pipeline=[]"], r"^pipeline: empty; name at least one stage$"),
    "dfpo_adapter_disabled_without_adapter": (
        ["pipeline=[dfpo]", "dfpo.ref=adapter_disabled", "adapter=none"],
        r"^dfpo.ref: adapter_disabled needs an adapter on the policy \(adapter=moe_lora\)$",
    ),
    "mole_without_adapter": (["adapter=none"], r"^adapter: stage mole needs an adapter \(adapter=moe_lora\)$"),
    "unknown_dfpo_loss": (["dfpo.loss=ipo"], r"^dfpo.loss: must be 'dfpo' or 'dpo', got 'ipo'$"),
    "unknown_dfpo_reference": (
        ["dfpo.ref=frozen"],
        r"^dfpo.ref: must be one of 'cached', 'online' or 'adapter_disabled', got 'frozen'$",
    ),
    "label_smoothing_out_of_range": (
        ["dfpo.label_smoothing=0.7"],
        r"^dfpo.label_smoothing: must be a number in \[0, 0.5\), got 0.7$",
    ),
    "unknown_strategy": (
        ["trainer.strategy=deepspeed"],
        r"^trainer.strategy: must be auto, ddp or fsdp, got 'deepspeed'$",
    ),
    "unknown_logger": (
        ["logger.kinds=[tensorboard]"],
        r"^logger.kinds: only csv and wandb are supported, got \['tensorboard'\]$",
    ),
    "negative_checkpoint_interval": (
        ["checkpoint_every_n_steps=-1"],
        r"^checkpoint_every_n_steps: must be a whole number >= 0, got -1; 0 turns periodic checkpoints off$",
    ),
    "keep_no_checkpoints": (
        ["keep_last_checkpoints=0"],
        r"^keep_last_checkpoints: must be a whole number >= 1, got 0$",
    ),
    "unknown_template": (["model.template=chatml_nope"], r"^model.template: unknown chat template 'chatml_nope'"),
    "unknown_router": (["adapter.router=nope"], r"^adapter.router: unknown router 'nope'; registered routers: "),
    "stage_without_optimizer_target": (["~sft.optimizer._target_"], r"^sft.optimizer: needs a `_target_`"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_ERRORS))
def test_bad_config_names_the_key(case):
    overrides, pattern = CONFIG_ERRORS[case]
    cfg = compose(overrides)
    with pytest.raises(ConfigError, match=pattern):
        validate(cfg)


def test_typo_in_yaml_is_an_unknown_key():
    cfg = compose()
    with open_dict(cfg):
        cfg.dfpo.betta = 0.2  # what `betta: 0.2` in a stage or experiment YAML composes to
    with pytest.raises(ConfigError, match=r"^unknown config key `dfpo.betta`"):
        validate(cfg)


def test_unknown_override_is_a_hydra_error():
    with pytest.raises(ConfigCompositionException, match=r"Could not override 'sft.max_stepz'"):
        compose(["sft.max_stepz=3"])


def corpus(root, **files):
    """A hand-written corpus, sealed with a manifest as the builder would (readers refuse one without)."""
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    write_manifest(str(root))
    return root


SFT_FILES = {"sft/train.jsonl": lines(INSTR), "sft/dev.jsonl": lines(INSTR)}


def test_dfpo_without_preference_data(tmp_path):
    root = corpus(tmp_path, **SFT_FILES, **{"dfpo/train.jsonl": "\n", "dfpo/dev.jsonl": ""})
    with pytest.raises(
        ConfigError, match=rf"^data.root: {root}/dfpo/train.jsonl holds no preference pairs; stage dfpo needs them$"
    ):
        validate(compose(["+experiment=dfpo_demo", f"data.root={root}"]))


def test_data_root_that_is_not_a_built_corpus(tmp_path):
    with pytest.raises(
        DataError, match=rf"^data.root: {tmp_path} has no manifest.json \(not a complete PedCorpus build"
    ):
        validate(compose([f"data.root={tmp_path}"]))


def test_data_root_without_a_manifest(tmp_path):
    from pedgpt.data.stage_data import corpus_part

    root = tmp_path / "c"
    root.mkdir()
    (root / "sft").mkdir()
    (root / "sft" / "train.jsonl").write_text(lines(INSTR), encoding="utf-8")
    with pytest.raises(
        CorpusError,
        match=rf"^data.root: {root} has no manifest.json \(not a complete PedCorpus build; rebuild it with "
        rf"`python -m pedgpt.data.build source_dir=... out_dir={root}`\)$",
    ):
        corpus_part(compose([f"data.root={root}"]).data, "sft", "train")


def test_data_root_cut_after_the_build(tmp_path):
    from pedgpt.data.stage_data import corpus_part

    root = corpus(tmp_path, **{"sft/train.jsonl": lines(INSTR, INSTR, INSTR), "sft/dev.jsonl": lines(INSTR)})
    with pytest.raises(CorpusError, match=r"dfpo/train.jsonl is not part of this build"):
        verify_corpus(str(root), need=["dfpo/train.jsonl"])
    path = root / "sft" / "train.jsonl"
    path.write_text(lines(INSTR), encoding="utf-8")  # what a killed writer used to leave: fewer whole lines
    n = len(lines(INSTR).encode())
    with pytest.raises(
        CorpusError, match=rf"^data.root: {path} has {n} bytes, manifest.json says {3 * n} \(cut or changed since"
    ):
        corpus_part(compose([f"data.root={root}"]).data, "sft", "train")


def test_task_router_without_task_labels(tmp_path):
    untasked = {**INSTR, "task": "general"}
    root = corpus(tmp_path, **{"sft/train.jsonl": lines(untasked), "sft/dev.jsonl": lines(untasked)})
    with pytest.raises(
        ConfigError,
        match=rf"^adapter.router: task routes by task, but {root}/sft/train.jsonl holds no "
        r"instruction labelled with a task of \['medkqa', 'evidiag', 'trerecom'\]$",
    ):
        validate(compose(["+experiment=mole_demo", "adapter.router=task", f"data.root={root}"]))


# == checkpoints ==========================================================================================
def test_truncated_checkpoint(tmp_path):
    path = tmp_path / "step=4.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(256, 256)}, "global_step": 4}, path)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    with pytest.raises(
        CheckpointError, match=rf"^{path}: corrupted or truncated checkpoint \(not a complete torch.save archive\)$"
    ):
        verify_checkpoint(str(path))


def test_checkpoint_that_is_not_a_checkpoint(tmp_path):
    path = write(tmp_path / "step=4.ckpt", "not a checkpoint\n")
    with pytest.raises(
        CheckpointError, match=rf"^{path}: corrupted or truncated checkpoint \(not a complete torch.save archive\)$"
    ):
        verify_checkpoint(path)


class Payload:  # an arbitrary object: weights_only loading must refuse it
    pass


def test_checkpoint_with_arbitrary_pickled_objects_is_refused(tmp_path):
    path = tmp_path / "step=4.ckpt"
    torch.save({"global_step": 4, "extra": Payload()}, path)
    with pytest.raises(
        CheckpointError,
        match=rf"^{path}: corrupted or truncated checkpoint \(UnpicklingError: Weights only load failed",
    ):
        verify_checkpoint(str(path))


def test_incomplete_sharded_checkpoint(tmp_path):
    (tmp_path / "step=4.ckpt").mkdir()
    with pytest.raises(CheckpointError, match=r"incomplete sharded checkpoint \(no .metadata\)$"):
        verify_checkpoint(str(tmp_path / "step=4.ckpt"))


def test_checkpoint_path_that_does_not_exist(tmp_path):
    from pedgpt.training.pipeline import resume_checkpoint

    missing = tmp_path / "step=7.ckpt"
    cfg = compose(["+experiment=sft_demo", f"ckpt_path='{missing}'"])  # `=` in a value needs quotes
    with pytest.raises(CheckpointError, match=rf"^ckpt_path={missing}: {missing} does not exist$"):
        resume_checkpoint(cfg, str(tmp_path / "sft"))


def test_checkpoint_path_that_is_not_step_numbered():
    with pytest.raises(CheckpointError, match=r"^/x/model.ckpt: not a step-numbered checkpoint \(step=N.ckpt\)$"):
        checkpoint_step("/x/model.ckpt")


def test_nothing_to_resume(tmp_path):
    from pedgpt.training.pipeline import run_pipeline

    cfg = compose(["+experiment=sft_demo", "ckpt_path=last", f"paths.cache_dir={tmp_path}/cache"])
    with pytest.raises(
        CheckpointError,
        match=rf"^ckpt_path=last: no checkpoint and no finished stage under {tmp_path}/run; "
        "nothing to resume",
    ):
        run_pipeline(cfg, str(tmp_path / "run"))
    assert not (tmp_path / "run" / "init").exists()  # failed before building anything


def test_unquoted_checkpoint_path_with_equals_sign_is_a_hydra_parse_error(tmp_path):
    with pytest.raises(Exception, match=r"mismatched input '=' expecting <EOF>"):
        compose([f"ckpt_path={tmp_path}/step=7.ckpt"])


def test_resume_with_changed_data():
    from pedgpt.data.datamodule import ExamplesDataModule

    dm = ExamplesDataModule(list(range(10)), [], collate=list, batch_size=2, val_batch_size=2, seed=0)
    with pytest.raises(
        ValueError,
        match=r"^checkpoint was written for 12 training examples, this run has 10: the data "
        r"changed, so the exact data position cannot be restored$",
    ):
        dm.load_state_dict({"epoch": 0, "samples_consumed": 6, "dataset_size": 12})


# == tokenizers and model directories ======================================================================
def export_dir(root, *files):
    root.mkdir()
    for f in files:
        (root / f).write_text("{}")
    return root


def test_init_from_without_config_json(tmp_path):
    d = export_dir(tmp_path / "exp", "tokenizer.json")
    with pytest.raises(ConfigError, match=rf"^init_from: {d} is not an HF export \(no config.json\)$"):
        validate(compose(["+experiment=sft_demo", f"init_from={d}"]))


def test_init_from_without_a_tokenizer(tmp_path):
    d = export_dir(tmp_path / "exp", "config.json", "model.safetensors")
    with pytest.raises(
        ConfigError, match=rf"^init_from: {d}: no tokenizer files \(missing tokenizer.json, or tokenizer.model"
    ):
        validate(compose(["+experiment=sft_demo", f"init_from={d}"]))


def test_model_path_without_config_json(tmp_path):
    from pedgpt.common.errors import ModelPathError
    from pedgpt.models.build import resolve_model_path

    cfg = compose(["+experiment=sft_7b", f"model.path={tmp_path}"])
    with pytest.raises(
        ModelPathError, match=rf"^model weights for 'baichuan2_7b' not found at {tmp_path}: set model.path="
    ):
        resolve_model_path(cfg.model)


def test_inference_model_dir_that_does_not_exist(tmp_path):
    from pedgpt.models.exports import load_for_inference

    with pytest.raises(FileNotFoundError, match=rf"^{tmp_path}/nope: no such model directory$"):
        load_for_inference(str(tmp_path / "nope"))


# == command lines =======================================================================================
SCORE_ERRORS = {
    "malformed_line": (
        lines({"prediction": "多喝水", "reference": "多喝水"}, '{"prediction" "x", "reference": "y"}'),
        ":2: invalid JSON (Expecting ':' delimiter at column 15)",
    ),
    "missing_reference": (lines({"prediction": "多喝水"}), ":1: missing field 'reference'"),
    "prediction_not_a_string": (
        lines({"prediction": 3, "reference": "多喝水"}),
        ":1: field 'prediction' must be a string, got int",
    ),
    "not_utf8": (b'{"prediction": "' + GBK + b'", "reference": "x"}\n', ": not UTF-8 text (invalid"),
}


@pytest.mark.parametrize("case", sorted(SCORE_ERRORS))
def test_score_cli_bad_file_exits_2_naming_file_and_line(tmp_path, capsys, case):
    from pedgpt.score import main

    data, fragment = SCORE_ERRORS[case]
    path = write(tmp_path / "preds.jsonl", data)
    assert main([path]) == 2
    assert capsys.readouterr().err.strip().startswith(path + fragment)


def test_score_cli_counts_empty_references_as_excluded(tmp_path, capsys):
    from pedgpt.score import main

    path = write(
        tmp_path / "preds.jsonl",
        lines({"prediction": "多喝水", "reference": "多喝水"}, {"prediction": "多喝水", "reference": "  "}),
    )
    assert main([path, "--workers", "1"]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out.strip().splitlines()[-1])
    assert report["n"] == 1 and report["excluded"] == {"empty_reference": 1}
    assert "1 of 2 rows have an empty reference and are excluded from every score" in err


def test_score_cli_file_with_only_empty_references(tmp_path, capsys):
    from pedgpt.score import main

    path = write(tmp_path / "preds.jsonl", lines({"prediction": "多喝水", "reference": ""}))
    assert main([path]) == 2
    assert capsys.readouterr().err.strip() == f"{path}: no records with a non-empty reference (1 excluded)"


def test_judge_url_credentials_are_never_echoed(tmp_path):
    from pedgpt.evaluation.judging.backends import HTTPJudge, JudgeError

    judge = HTTPJudge(base_url="http://alice:hunter2@127.0.0.1:9/v1?token=abc123&mode=x", model="m", retries=0)
    with pytest.raises(JudgeError) as e:
        judge.judge(["问题"])
    shown = [str(e.value), repr(judge), json.dumps(judge.describe())]
    assert str(e.value) == "http://***@127.0.0.1:9/v1/chat/completions?token=***&mode=*** failed: ConnectError"
    assert not [x for x in shown if "hunter2" in x or "alice" in x or "abc123" in x]


def test_rewrite_endpoint_credentials_are_never_echoed():
    from pedgpt.data.corpus.rewrite import chat_completion

    with pytest.raises(RuntimeError) as e:
        chat_completion("http://bob:s3cret@127.0.0.1:9/v1?key=k9", "m", [{"role": "user", "content": "x"}], timeout=2)
    assert str(e.value).startswith("rewrite: POST http://***@127.0.0.1:9/v1/chat/completions?key=*** failed")
    assert "s3cret" not in str(e.value) and "k9" not in str(e.value)


def test_rewrite_reply_without_text_keeps_the_templated_answer():
    from omegaconf import OmegaConf

    from helpers.stub_openai import ChatStub, serving
    from pedgpt.data.corpus.rewrite import rewrite_records

    replies = iter([None, 7, {"text": "x"}, "  ", "润色后的回答。"])

    class Stub(ChatStub):
        def reply(self, body):
            return next(replies)

    recs = [
        Instruction(messages=[Message("user", f"问{i}"), Message("assistant", f"模板回答{i}。")], task="medkqa")
        for i in range(5)
    ]
    counts = Counter()
    with serving(Stub) as url:
        cfg = OmegaConf.create({"base_url": url, "model": "m", "api_key_env": "", "tasks": ["medkqa"], "timeout_s": 5})
        out = rewrite_records(recs, cfg, counts)
    assert [r.response for r in out] == ["模板回答0。", "模板回答1。", "模板回答2。", "模板回答3。", "润色后的回答。"]
    assert dict(counts) == {
        "kept_original:null_content": 1,
        "kept_original:non_text_content": 2,
        "kept_original:empty_content": 1,
        "rewritten": 1,
    }


@pytest.mark.timeout(300, method="thread")
def test_one_megabyte_document_trains_the_tokenizer_quickly():
    """A 1 MB document with no punctuation (one endless pre-token) used to keep BPE training busy for hours.
    It is now cut into pieces and sampled: it trains no slower than the same text split into short documents.
    (The timeout is for a regression, which would never return.)"""
    import time

    from pedgpt.models.tokenizer import train_bpe_tokenizer

    words = ["宝宝发烧三天精神尚可" * 3, "手足口病多见于五岁以下儿童口腔和手足出现疱疹", "小儿肺炎常有发热咳嗽气促"]
    text = "".join(words * (1_000_000 // sum(map(len, words)) + 1))[:1_000_000]
    short = [text[i : i + 200] for i in range(0, len(text), 200)]
    t0 = time.perf_counter()
    train_bpe_tokenizer(short, vocab_size=500)
    t_short = time.perf_counter() - t0
    t0 = time.perf_counter()
    tok = train_bpe_tokenizer([text], vocab_size=500)
    t_long = time.perf_counter() - t0
    assert t_long < 3 * t_short + 1.0, (t_long, t_short)
    assert len(tok("宝宝发烧", add_special_tokens=False)["input_ids"]) <= 4  # it did learn merges


def train_cli(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pedgpt.train", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_train_cli_unknown_override_is_a_hydra_error(tmp_path):
    r = train_cli("+experiment=sft_demo", "sft.max_stepz=3", f"hydra.run.dir={tmp_path}")
    assert r.returncode == 1
    assert "Could not override 'sft.max_stepz'." in r.stderr and "Key 'max_stepz' is not in struct" in r.stderr


def test_build_cli_of_an_empty_source_exits_1_with_one_line(tmp_path):
    (tmp_path / "src").mkdir()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pedgpt.data.build",
            f"source_dir={tmp_path}/src",
            f"out_dir={tmp_path}/out",
            "progress=false",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 1 and not (tmp_path / "out").exists()
    assert r.stderr.strip().splitlines() == [
        f"error: source_dir={tmp_path}/src: the build kept no training record (cpt/train.jsonl, sft/train.jsonl, "
        f"dfpo/train.jsonl would all be empty; 0 source rows read, skipped: none); nothing written to {tmp_path}/out"
    ]


def test_train_cli_config_error_exits_2_with_one_line(tmp_path):
    r = train_cli("+experiment=sft_demo", "sft.batch_size=0", f"hydra.run.dir={tmp_path}")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == "config error: sft.batch_size: must be a whole number >= 1, got 0"


def test_train_cli_hostile_data_root_exits_2_with_one_line(tmp_path):
    bad = {**INSTR, "messages": [{"role": "assistant", "content": "答"}]}
    files = {**SFT_FILES, "sft/train.jsonl": lines(INSTR, bad), "cpt/train.jsonl": "", "dfpo/train.jsonl": ""}
    root = corpus(tmp_path / "corpus", **files)
    r = train_cli("+experiment=sft_demo", f"data.root={root}", f"hydra.run.dir={tmp_path}/run")
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.strip().splitlines()[-1] == (
        f"error: {root}/sft/train.jsonl:2: instruction messages must alternate user/assistant from a user turn: "
        "message 0 is assistant"
    )


# == data that encodes to nothing ==========================================================================
def test_all_preference_pairs_skipped_is_a_clear_error(tmp_path):
    from helpers.runs import TINY
    from pedgpt.training.pipeline import run_pipeline

    cfg = compose(
        TINY + ["+experiment=dfpo_demo", "trainer.max_steps=1", "dfpo.max_len=8", f"paths.cache_dir={tmp_path}/cache"]
    )
    with pytest.raises(
        ValueError, match=r"^dfpo: no training examples left after encoding \(skipped: .*pair_longer_than_max_len"
    ):
        run_pipeline(cfg, str(tmp_path / "run"))
