#!/usr/bin/env bash
# The whole test suite, from a fresh machine: set up, then lint (ruff), types (mypy strict on the plugin and
# connector libraries) and pytest (unit, plugin, workflow and cluster-path tests; PostgreSQL at
# ${AIOS_TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432/test}) in a random order whose seed it prints.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/setup_flyte2.sh  # .venv-flyte2: the Flyte 2 adapter's tests (tests/flyte2) run there
export PATH="$PWD/.venv/bin:$PATH" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
echo "==> ruff"
ruff check .
ruff format --check .
echo "==> mypy (strict on plugins/ and connectors/)"
mypy plugins/flyte-aios-core/flytekitplugins plugins/flytekit-aios/flytekitplugins plugins/flyte-aios-flyte2/flytekitplugins \
  connectors/flytekit-aios-connectors/flytekitplugins
# random but reproducible test order (pytest-randomly): AIOS_TEST_SEED=<seed> repeats a run's order
seed="${AIOS_TEST_SEED:-$(python -c 'import secrets; print(secrets.randbelow(2**32))')}"
echo "==> pytest (random order, seed $seed: rerun it with AIOS_TEST_SEED=$seed bash scripts/test.sh)"
exec pytest -q -p no:cacheprovider -p randomly --randomly-seed="$seed" "$@"
