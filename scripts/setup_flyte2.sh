#!/usr/bin/env bash
# The Flyte 2 adapter's own environment: .venv-flyte2 with the `flyte` SDK (2.x) and the pack's governance core.
# flytekit 1.16 and flyte 2.x pin different rich-click releases (pip would downgrade the main .venv's), so the
# adapter is tested in this separate environment; tests/flyte2/test_flyte2.py runs its inner tests here.
# It installs no flytekit and no ML stack (torch, transformers, great-expectations): the adapter
# (plugins/flyte-aios-flyte2, distribution flyte-aios-flyte2) and the governance core it uses import neither.
# Idempotent: a second run only checks. Exit 3 = the package index is unreachable (the outer test skips on it).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
VENV=.venv-flyte2
FLYTE_PIN="flyte==2.12.1"
DEPS=(
  "$FLYTE_PIN" "pydantic>=2.10,<3" "orjson>=3.10" "pyyaml>=6" "cedarpy==4.12.2" "cryptography>=42"
  "psycopg[binary]>=3.2" "sqlalchemy>=2.0" "click>=8.1" "rich>=13" "opentelemetry-sdk==1.45.2"
  "openlineage-python>=1.30" "pytest>=8" "pytest-timeout>=2.3"
)
# pip -q as scripts/setup.sh runs it: without the machine-wide config's "Location '...' is ignored" line per package
# and setuptools' "Editable installation." notice; every other message (errors included) is kept.
pip_q() {
  PYTHONWARNINGS="${PYTHONWARNINGS:+$PYTHONWARNINGS,}ignore:Editable installation" \
    "$VENV/bin/python" -m pip "$@" \
    2> >(grep -v -E "^WARNING: Location '[^']*' is ignored: it is neither a file nor a directory\.$" >&2)
}
stamp="$VENV/.aios-flyte2-$(printf '%s\n' "${DEPS[@]}" | cat - pyproject.toml plugins/flyte-aios-core/pyproject.toml plugins/flyte-aios-flyte2/pyproject.toml "$0" | sha256sum | cut -c1-16)"
[ -e "$stamp" ] && exit 0
echo "==> creating $VENV (flyte SDK 2.x + the governance core, no flytekit, no torch)"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
if ! pip_q install -q --disable-pip-version-check "${DEPS[@]}"; then
  if ! pip_q download -q --no-deps -d "$VENV/.probe" "pyyaml>=6" >/dev/null 2>&1; then
    echo "setup_flyte2: the package index is unreachable; $VENV was not created" >&2
    exit 3
  fi
  echo "setup_flyte2: pip could not install the Flyte 2 environment (see the error above)" >&2
  exit 1
fi
# The governance core and the Flyte 2 adapter, editable (their dependencies are in DEPS above, so no flytekit and
# no ML stack come in); compat mode puts each source root on sys.path. The reference project, editable and
# without its dependencies, puts the checkout on sys.path for workflows_flyte2.
pip_q install -q --disable-pip-version-check --no-deps --config-settings editable_mode=compat \
  -e plugins/flyte-aios-core -e plugins/flyte-aios-flyte2 -e .
rm -f "$VENV"/.aios-flyte2-*; touch "$stamp"
echo "==> $VENV ready: $("$VENV/bin/python" -c 'import flyte; print("flyte", flyte.__version__)')"
