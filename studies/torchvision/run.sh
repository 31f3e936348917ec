#!/usr/bin/env bash
# The torchvision NetScore study from one command (see README.md):
#
#   studies/torchvision/run.sh                 # export what is missing, check, rank
#   studies/torchvision/run.sh --force         # export everything again (options go to export.py)
#
# SIDE_PYTHON: a Python with torch and torchvision (default /work/side/bin/python; never the
# project's .venv). EXPORTS: where the .onnx files go (default /work/exports/study, not the repo).
set -euo pipefail

cd "$(dirname "$0")/../.."
SIDE_PYTHON=${SIDE_PYTHON:-/work/side/bin/python}
VENV=${VENV:-.venv}
EXPORTS=${EXPORTS:-/work/exports/study}
STUDY=studies/torchvision

"$SIDE_PYTHON" "$STUDY/export.py" --exports "$EXPORTS" "$@"
"$VENV/bin/python" "$STUDY/check.py" --exports "$EXPORTS"

# onnxscore rank exits 2 when a model could not be read (the study is still written): go on to
# the other outputs and exit with the worst status at the end
status=0
rank() {
    local rc=0
    "$VENV/bin/onnxscore" rank "$EXPORTS" --accuracy "$STUDY/accuracy.csv" "$@" || rc=$?
    if (( rc > status )); then status=$rc; fi
}
rank --format md -o "$STUDY/leaderboard.md"
rank --format csv -o "$STUDY/leaderboard.csv"
rank --plot "$STUDY/figures.png"
exit "$status"
