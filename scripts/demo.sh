#!/usr/bin/env bash
# The pack's main job end to end on the embedded default (local Flyte execution, SQLite audit store):
# generates a demo corpus, runs the governed document workflow, grants the one approval it asks for through
# `aios approvals approve` from a second process, and prints the summary plus where results, audit trail and
# reports are.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec aios demo "$@"
