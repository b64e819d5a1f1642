"""The stage registry: a stage defined entirely in this file (config dataclass, module, examples, report hooks)
runs through ``python -m pedgpt.train pipeline=[toy]``, loaded as a plugin; the pipeline names no stage."""

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from helpers import ROOT, TESTS, compose
from pedgpt.common.errors import ConfigError
from pedgpt.data import stage_data as sd
from pedgpt.data.collate import collate_padded
from pedgpt.stages import get_stage, stage_names
from pedgpt.stages.module import CausalLMModule, module_settings
from pedgpt.stages.registry import OptimizerConfig, ReportSink, Stage, StageConfig, StageData, register_stage
from pedgpt.stages.sft import instruction_examples
from pedgpt.training.validate import validate


# -- the toy stage: SFT on one task only, with its own setting and report entries --------------------------
@dataclass
class ToyConfig(StageConfig):
    task: str = MISSING  # the only task this stage trains on


class ToyModule(CausalLMModule):
    stage_name = "toy"


@register_stage
class Toy(Stage):
    name = "toy"
    config_class = ToyConfig
    corpus_parts = ("sft",)

    def check(self) -> None:
        if self.st.task not in ("medkqa", "evidiag", "trerecom"):
            raise ConfigError(f"toy.task: a pediatric task, got {self.st.task!r}")

    def examples(self, tokenizer: Any) -> StageData:
        records = {
            s: [r for r in sd.corpus_part(self.cfg.data, "sft", s) if r.task == self.st.task] for s in ("train", "dev")
        }
        train, val, info = instruction_examples(self, records, tokenizer)
        return StageData(train, val, partial(collate_padded, pad_id=tokenizer.pad_token_id), info)

    def module(self, init_dir: str) -> CausalLMModule:
        return ToyModule(**module_settings(self.cfg, self.key(), init_dir))

    def report(self, module: Any, val_metrics: dict[str, float], data: StageData, out: ReportSink) -> dict[str, Any]:
        return {"toy_task": self.st.task, "toy_train_examples": len(data.train)}

    @classmethod
    def markdown(cls, result: dict[str, Any], run_dir: str) -> list[str]:
        return ["## Toy stage", "", f"trained on {result['toy_train_examples']} {result['toy_task']} examples"]


# the toy's values live with its schema (no YAML file): stored as a dataclass instance, stage/toy
ConfigStore.instance().store(
    group="stage",
    name="toy",
    node=ToyConfig(
        max_steps=3,
        batch_size=4,
        val_batch_size=8,
        max_len=128,
        log_every_n_steps=1,
        val_check_interval=3,
        warmup_steps=0,
        min_lr_ratio=0.1,
        loss_chunk_size=0,
        activation_checkpointing=False,
        task="medkqa",
        optimizer=OptimizerConfig(_target_="torch.optim.AdamW", _partial_=True, lr=1e-3, weight_decay=0.0),
    ),
)


# -- tests -------------------------------------------------------------------------------------------------
def test_registry_lists_the_built_in_stages_and_the_toy():
    assert {"cpt", "sft", "dfpo", "mole", "lora_baseline", "toy"} <= set(stage_names())
    assert get_stage("lora_baseline").key() == "mole"  # a variant reads stage mole's settings
    with pytest.raises(ConfigError, match="unknown stage 'nope'; registered stages: cpt, dfpo"):
        get_stage("nope")


def test_plugin_stage_config_is_filled_typed_and_checked():
    cfg = validate(compose(["pipeline=[toy]"]))
    assert cfg.toy.task == "medkqa" and cfg.toy.max_steps == 3
    assert validate(compose(["pipeline=[toy]", "+toy.max_steps=5"])).toy.max_steps == 5  # a run overrides one key
    with pytest.raises(ConfigError, match="toy.task: a pediatric task, got 'general'"):
        validate(compose(["pipeline=[toy]", "+toy.task=general"]))
    with pytest.raises(ConfigError, match="config key `toy.max_steps`: Value 'banana'"):
        validate(compose(["pipeline=[toy]", "+toy.max_steps=banana"]))
    with pytest.raises(ConfigError, match="unknown config key `toy.taks`"):
        validate(compose(["pipeline=[toy]", "+toy.taks=medkqa"]))


def test_unknown_pipeline_stage_fails_at_startup():
    with pytest.raises(ConfigError, match="pipeline: unknown stage 'sftt'"):
        validate(compose(["pipeline=[sftt]"]))


def test_pipeline_names_no_stage():
    """The stage-agnostic rooms never compare against a stage's name (the registry answers instead)."""
    for rel in ("training/pipeline.py", "training/validate.py", "training/planner.py", "training/report.py"):
        text = (ROOT / "pedgpt" / rel).read_text()
        for name in ("cpt", "sft", "dfpo", "mole"):
            assert f'"{name}"' not in text and f"'{name}'" not in text, (rel, name)


@pytest.mark.slow
def test_toy_stage_runs_through_the_train_command(tmp_path):
    env = {
        **os.environ,
        "PEDGPT_PLUGINS": "test_registry",
        "PEDGPT_CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONPATH": os.pathsep.join([str(TESTS / "stages"), str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    run = tmp_path / "run"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pedgpt.train",
            "pipeline=[toy]",
            "logger=csv",
            "progress_bar=false",
            "model.arch.num_hidden_layers=1",
            "model.arch.hidden_size=32",
            "model.arch.intermediate_size=64",
            "model.vocab_size=500",
            f"hydra.run.dir={run}",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((run / "report.json").read_text())
    assert report["pipeline"] == ["toy"] and report["toy"]["steps"] == 3
    assert report["toy"]["toy_task"] == "medkqa" and report["toy"]["toy_train_examples"] > 0
    assert (run / "toy" / "export" / "pedgpt_complete.json").exists()
    assert "## Toy stage" in (run / "report.md").read_text()
    rows = (run / "toy" / "metrics.csv").read_text()
    assert "train/loss" in rows and "val/loss" in rows
