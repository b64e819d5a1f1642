"""Shared test helpers (imported as ``helpers`` — ``tests/`` is on the path; test files never import each other)."""

from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir

import pedgpt.config  # noqa: F401  (stores the schemas the YAML files extend)
import pedgpt.stages  # noqa: F401  (registers the stages and their schemas)

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
CONF = str(ROOT / "conf")
FIXTURES = TESTS / "fixtures"


def compose(overrides=(), config_name="train"):
    """The composed Hydra config of ``conf/<config_name>.yaml`` with ``overrides`` (as the entry point sees it)."""
    with initialize_config_dir(version_base="1.3", config_dir=CONF):
        return hydra_compose(config_name=config_name, overrides=list(overrides))
