#!/usr/bin/env bash
# Build every distribution of the pack from this checkout into one folder (default dist/):
#   flyte-aios-core                  plugins/flyte-aios-core          governance core + `aios` CLI (no flytekit, no ML)
#   flytekitplugins-aios             plugins/flytekit-aios            flytekit plugin (entry point flytekit.plugins)
#   flytekitplugins-aios-connectors  connectors/flytekit-aios-connectors  Flyte connectors (entry point flytekit.plugins)
#   flyte-aios-flyte2                plugins/flyte-aios-flyte2        Flyte 2 adapter (preview)
#   flyte-aios                       .                                the reference project's dependency set (ML stack)
# Each is built from a copy of its folder, so the checkout gets no build/ or *.egg-info. Needs setuptools and wheel
# in the running Python (the .venv of scripts/setup.sh has both). Usage: bash scripts/build_dists.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="$(mkdir -p "${1:-dist}" && cd "${1:-dist}" && pwd)"
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
DISTS=(plugins/flyte-aios-core plugins/flytekit-aios connectors/flytekit-aios-connectors plugins/flyte-aios-flyte2 .)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for d in "${DISTS[@]}"; do
  name="$(basename "$(cd "$d" && pwd)")"
  src="$work/$name"
  mkdir -p "$src"
  if [ "$d" = "." ]; then
    cp pyproject.toml README.md "$src/"
  else
    (cd "$d" && tar --exclude=__pycache__ --exclude='*.egg-info' --exclude=build -cf - .) | (cd "$src" && tar -xf -)
  fi
  "$PY" -m pip wheel --no-deps --no-build-isolation --disable-pip-version-check -q -w "$OUT" "$src" \
    2> >(grep -v -E "^WARNING: Location '[^']*' is ignored: it is neither a file nor a directory\.$" >&2)
done
ls -1 "$OUT"/*.whl
