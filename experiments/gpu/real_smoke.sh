#!/usr/bin/env bash
# The real-model GPU smoke test (one GPU, ≤ 8 minutes): a few bf16 steps of each stage at Baichuan2-13B width
# (2 layers, ALiBi) and Qwen2.5-7B width (2 layers); the last line is one JSON object with tokens/s, MFU and peak
# memory per stage. Run from the repository root after `pip install -e .`.
set -euo pipefail
cd "$(dirname "$0")/../.."
timeout 480 python experiments/gpu/real_smoke.py "$@"
