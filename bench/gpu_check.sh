#!/usr/bin/env bash
# The GPU check (bench/gpu_check.py): bf16 exactness and speed at batch 1, 8, 32, one table.
#   bash bench/gpu_check.sh                 # NVIDIA GPUs (after `make install TORCH=torch`)
#   DEVICE=cpu bash bench/gpu_check.sh      # reduced sizes on CPU, as CI runs it
# Extra arguments go to the script (--help lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}" TOKENIZERS_PARALLELISM=false
exec "$PY" bench/gpu_check.py "$@"
