#!/usr/bin/env bash
# Run the example decoder through `python -m adafuse.run`, from the project root:
#   bash examples/custom_decoder/run.sh task=triviaqa limit=1 logger=none
# Further arguments are passed on (decoder.lead=0.3, theta_delta=0.5, -m ..., --help).
# Hydra finds conf/decoder/confident_proposer.yaml through hydra.searchpath; this folder goes
# on PYTHONPATH, so that its _target_ can be imported. Nothing in adafuse/ is edited.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
[ -x "$python" ] || python=python3
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" -m adafuse.run "hydra.searchpath=[file://$here/conf]" decoder=confident_proposer "$@"
