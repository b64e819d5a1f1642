import json
import os
import subprocess
import sys

import pytest
import torch

from helpers import CONF, ROOT, compose
from pedgpt.common.errors import ConfigError
from pedgpt.training.validate import validate

EXPERIMENTS = sorted(f[:-5] for f in os.listdir(os.path.join(CONF, "experiment")) if f.endswith(".yaml"))


def test_all_listed_experiments_exist():
    want = {f"{s}_{v}" for s in ("cpt", "sft", "dfpo", "mole") for v in ("demo", "7b", "13b")}
    assert want <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_composes_and_validates(name):
    cfg = compose([f"+experiment={name}", "dry_run=true"])  # GPU experiments: no device check on this machine
    validate(cfg)
    stage = name.split("_")[0]
    assert list(cfg.pipeline) == [stage]


def test_default_is_the_four_stage_demo():
    cfg = compose()
    validate(cfg)
    assert list(cfg.pipeline) == ["cpt", "sft", "dfpo", "mole"]
    assert cfg.model.name == "tiny" and cfg.data.root is None
    assert "experiment" not in cfg


def test_trainer_override_applies_to_every_stage():
    from pedgpt.training.pipeline import build_trainer

    cfg = compose(["trainer.max_steps=3", "logger=csv"])
    for s in ("cpt", "sft"):
        assert build_trainer(cfg, s, "/tmp/x", [], []).max_steps == 3
    cfg = compose()
    assert build_trainer(cfg, "sft", "/tmp/x", [], []).max_steps == cfg.sft.max_steps


def test_typo_in_yaml_is_rejected_with_the_key_name(tmp_path):
    cfg = compose()
    from omegaconf import open_dict

    with open_dict(cfg):
        cfg.sft.lerning_rate = 1e-3  # what a typo in a YAML overlay produces after composition
    with pytest.raises(ConfigError, match=r"sft\.lerning_rate"):
        validate(cfg)


def test_wrong_type_is_rejected_with_the_key_name():
    cfg = compose(["sft.max_steps=many"])
    with pytest.raises(ConfigError, match=r"sft\.max_steps"):
        validate(cfg)


def test_impossible_combination_is_rejected():
    with pytest.raises(ConfigError, match=r"adapter"):
        validate(compose(["adapter=none"]))
    with pytest.raises(ConfigError, match=r"sft\.max_len"):
        validate(compose(["sft.max_len=100000"]))


def _run(args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "pedgpt.train", *args], cwd=ROOT, capture_output=True, text=True, timeout=300, **kw
    )


def test_yaml_typo_fails_at_startup_from_the_command_line(tmp_path):
    typo = os.path.join(CONF, "experiment", "_test_typo.yaml")
    with open(typo, "w") as f:
        f.write("# @package _global_\nsft:\n  lerning_rate: 3\n")
    try:
        r = _run(["+experiment=_test_typo", f"hydra.run.dir={tmp_path}"])
    finally:
        os.remove(typo)
    assert r.returncode == 2
    assert "sft.lerning_rate" in r.stderr.strip().splitlines()[-1]


def test_dry_run_13b_prints_the_published_parameter_count():
    r = _run(["+experiment=dfpo_13b", "dry_run=true", "hydra.run.dir=/tmp/pedgpt-dryrun-test"])
    assert r.returncode == 0, r.stderr[-500:]
    plan = json.loads(r.stdout.strip().splitlines()[-1])
    assert abs(plan["params_total"] - 13.9e9) / 13.9e9 < 0.01  # Baichuan2-13B: 13.9B (published)
    assert plan["gpus"] == 8
    assert plan["bytes_per_gpu"] >= 16 * plan["params_trainable"] / plan["gpus"]


def test_gpu_experiment_on_a_cpu_machine_fails_at_startup_naming_the_key(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    r = _run(["+experiment=sft_13b", f"hydra.run.dir={tmp_path}", "init_from=/nonexistent"])
    assert r.returncode == 2
    assert "trainer.accelerator=cuda: no CUDA device" in r.stderr.strip().splitlines()[-1]


def test_required_init_from_is_named(tmp_path):
    r = _run(["+experiment=dfpo_7b", "trainer=cpu", f"hydra.run.dir={tmp_path}"])
    assert r.returncode == 2
    assert "init_from: required" in r.stderr.strip().splitlines()[-1]


def test_missing_weights_is_one_clear_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PEDGPT_MODEL_DIR"}
    r = _run(["+experiment=sft_7b", "trainer=cpu", f"hydra.run.dir={tmp_path}"], env=env)
    assert r.returncode == 2
    last = r.stderr.strip().splitlines()[-1]
    assert "model.path" in last and "PEDGPT_MODEL_DIR" in last
