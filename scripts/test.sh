#!/usr/bin/env bash
# The whole test suite, from a fresh machine: set up, then lint (ruff), types (mypy strict on the plugin and
# connector libraries) and pytest (unit, plugin, workflow and cluster-path tests; PostgreSQL at
# ${AIOS_TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432/test}).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
echo "==> ruff"
ruff check .
ruff format --check .
echo "==> mypy (strict on plugins/ and connectors/)"
mypy plugins/flytekitplugins connectors/flytekitplugins
echo "==> pytest"
exec pytest -q -p no:cacheprovider "$@"
