#!/usr/bin/env bash
# One node, N GPUs: torchrun starts the processes, Lightning sees them (TorchElasticEnvironment) and does
# not spawn its own. Every rank runs the whole pipeline; side effects happen on rank 0 behind barriers.
#   NPROC=8 MODEL_DIR=/models EXPERIMENT=sft_13b INIT_FROM=/runs/cpt/cpt/export DATA=/data/pedcorpus ./torchrun_1node.sh
set -euo pipefail
NPROC=${NPROC:-8}
EXPERIMENT=${EXPERIMENT:-sft_13b}
RUN_DIR=${RUN_DIR:-outputs/${EXPERIMENT}/$(date +%Y-%m-%d_%H-%M-%S)}
export PEDGPT_MODEL_DIR=${MODEL_DIR:?set MODEL_DIR to the directory holding Baichuan2-13B-Base/ etc.}
torchrun --standalone --nproc_per_node "$NPROC" -m pedgpt.train \
  +experiment="$EXPERIMENT" trainer=fsdp trainer.devices="$NPROC" trainer.num_nodes=1 \
  ${INIT_FROM:+init_from=$INIT_FROM} ${DATA:+data.root=$DATA} \
  hydra.run.dir="$RUN_DIR" checkpoint_every_n_steps="${CKPT_EVERY:-200}" "$@"
# after a failure: the same command with RUN_DIR=<that run dir> and ckpt_path=last
