#!/usr/bin/env bash
# Expert-count ablation of the MoE-LoRA stage on the demo (issue 5 item 7), from the repository root:
#   experiments/expert_ablation/run.sh                          # makes the DFPO export once, then reuses it
#   DFPO_EXPORT=path/to/dfpo/export experiments/expert_ablation/run.sh
# Every run starts from the same frozen DFPO export (init_from). Results: experiments/expert_ablation/results/.
set -euo pipefail
PY=${PYTHON:-python}
OUT=${ABLATION_OUT:-experiments/expert_ablation/results}

if [[ -z "${DFPO_EXPORT:-}" ]]; then
  DFPO_EXPORT=outputs/expert_ablation_dfpo/dfpo/export
  if [[ ! -f "$DFPO_EXPORT/pedgpt_complete.json" ]]; then
    "$PY" -m pedgpt.train 'pipeline=[cpt,sft,dfpo]' name=expert_ablation_dfpo \
      hydra.run.dir=outputs/expert_ablation_dfpo progress_bar=false
  fi
fi
[[ -f "$DFPO_EXPORT/config.json" ]] || { echo "DFPO_EXPORT=$DFPO_EXPORT: not an HF export" >&2; exit 2; }

STAMP=$(date +%Y-%m-%d_%H-%M-%S)   # a fresh folder (and W&B group) per invocation
# 1) number of specific experts (1 universal always on), the paper's noisy_token router
"$PY" -m pedgpt.train -m +experiment=mole_demo adapter.num_specific=1,2,3,4 init_from="$DFPO_EXPORT" \
  hydra.sweep.dir=multirun/expert_ablation-$STAMP progress_bar=false
# 2) router, at the paper's 1u+3s
"$PY" -m pedgpt.train -m +experiment=mole_demo adapter.router=noisy_token,token,task,token_task_aux \
  init_from="$DFPO_EXPORT" hydra.sweep.dir=multirun/expert_ablation_router-$STAMP progress_bar=false
# 3) the baseline row: one peft LoRA of the 1u+3s adapter's trainable size, same data, steps and lr
"$PY" -m pedgpt.train +experiment=mole_demo 'pipeline=[lora_baseline]' init_from="$DFPO_EXPORT" \
  hydra.run.dir=multirun/expert_ablation_lora-$STAMP progress_bar=false

"$PY" experiments/expert_ablation/collect.py "multirun/expert_ablation-$STAMP" "multirun/expert_ablation_router-$STAMP" \
  --baseline "multirun/expert_ablation_lora-$STAMP" --out "$OUT"
