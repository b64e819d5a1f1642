#!/usr/bin/env bash
# DFPO μ sweep on the demo: a Hydra multirun over dfpo.mu ∈ {0, 0.5, 1, 2}, policy and reference = an SFT export.
#
#   experiments/dfpo_mu_sweep/run.sh [SFT_EXPORT] [extra Hydra overrides for the DFPO runs ...]
#
# Without SFT_EXPORT (or with "-") it first trains one with `+experiment=sft_demo` (reused when complete).
# OUT (default outputs/dfpo_mu_sweep) holds sft/, sweep/<job num>/report.json, results.md/.json and the plot.
# On a built PedCorpus pass data.root=DIR as an extra override (and train the SFT export on it too).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python}
OUT=${OUT:-outputs/dfpo_mu_sweep}
SFT=${1:--}
shift || true

if [ "$SFT" = "-" ]; then
  SFT="$OUT/sft/sft/export"
  if [ ! -f "$SFT/pedgpt_complete.json" ]; then
    "$PY" -m pedgpt.train +experiment=sft_demo hydra.run.dir="$OUT/sft" progress_bar=false "$@"
  fi
fi

"$PY" -m pedgpt.train -m +experiment=dfpo_demo 'dfpo.mu=0,0.5,1,2' init_from="$SFT" \
  hydra.sweep.dir="$OUT/sweep" progress_bar=false "$@"
"$PY" experiments/dfpo_mu_sweep/collect.py "$OUT/sweep" --out "$OUT"
