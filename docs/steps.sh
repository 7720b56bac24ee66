# Sourced (not run) by the experiment scripts of docs/: strict mode, the repository root as
# the working folder, the shared data, the venv's commands and `step`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SHARED="${BLURSYNTH_SHARED_DATA:-../shared/data}"
BIN=.venv/bin
# step TARGET COMMAND...: run COMMAND unless TARGET exists, so a finished step is skipped and
# an interrupted script continues where it stopped
step() { [ -e "$1" ] && echo "skip $1" || { echo "== $1 ($(date -u +%T))"; shift; "$@"; }; }
