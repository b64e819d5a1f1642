"""Building a PedCorpus in tests, and finding the shared public data (``../shared/data`` or ``$PEDGPT_DATA_DIR``)."""

import os

from hydra import compose, initialize_config_dir

import pedgpt.config  # noqa: F401  (stores the schema build.yaml extends)
from helpers import CONF, ROOT
from pedgpt.data.corpus.build import build


def run_build(source, out, *overrides):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("build", overrides=[f"source_dir={source}", f"out_dir={out}", "progress=false", *overrides])
    return build(cfg)


def shared_data_dir():
    for cand in (os.environ.get("PEDGPT_DATA_DIR"), os.path.join(os.path.dirname(ROOT), "shared", "data")):
        if cand and os.path.isdir(cand):
            return cand
    return None
