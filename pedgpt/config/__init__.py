"""How settings reach the code: the Hydra config tree's location, typed schemas (stored in Hydra's ConfigStore
when this package is imported, so every ``conf/`` file can extend them), and the small tools' CLI."""

from __future__ import annotations

import os

from pedgpt.config.schema import register_schemas
from pedgpt.config.sweep import register_resolvers

#: the Hydra config tree (``conf/`` at the repository root)
CONF_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "conf")

register_schemas()
register_resolvers()
