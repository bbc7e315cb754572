#!/usr/bin/env bash
# Set up flyte-aios on a fresh machine of this kind (Debian 12, Python 3.11, root or sudo for apt):
#   1. apt packages: tesseract (OCR), poppler (PDF rendering), chromium (HTML report tests), graphviz (lineage
#      graph layout in the review report), Python docs/testsuite
#      (real HTML pages and RFC 822 e-mails used by the document tests);
#   2. a virtual environment in .venv with the pack's distributions installed (editable, compiled) and its test tools;
#   3. the real third-party test data under .data (scripts/fetch_data.sh).
# Idempotent: a second run only checks. Set AIOS_SKIP_APT=1 to skip apt (then install those packages yourself).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
APT_PKGS="tesseract-ocr tesseract-ocr-eng poppler-utils chromium graphviz python3.11-doc libpython3.11-testsuite"

if [ "${AIOS_SKIP_APT:-0}" != "1" ]; then
  missing=""
  for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  if [ -n "$missing" ]; then
    echo "==> apt-get install$missing"
    SUDO=""; [ "$(id -u)" = "0" ] || SUDO="sudo"
    $SUDO apt-get update -qq
    # -qq still has debconf say it delays configuration without apt-utils: drop that one line, keep real errors
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null \
      2> >(grep -v -E "^debconf: delaying package configuration, since apt-utils is not installed$" >&2)
  fi
fi

# pip -q still prints one "Location '...' is ignored" warning per package when a machine-wide pip config lists
# index folders that do not exist; drop exactly those lines, keep every other message (errors included).
# setuptools' build backend also prints an "Editable installation." notice (a 10-line box) for `-e .`: that
# one is silenced at its source with a warnings filter on its message, which the build subprocess inherits.
pip_install() {
  PYTHONWARNINGS="${PYTHONWARNINGS:+$PYTHONWARNINGS,}ignore:Editable installation" \
    .venv/bin/python -m pip install -q "$@" \
    2> >(grep -v -E "^WARNING: Location '[^']*' is ignored: it is neither a file nor a directory\.$" >&2)
}

# the pack's distributions, built from this checkout (each with its own pyproject.toml; see docs/architecture.md)
DISTS=(plugins/flyte-aios-core plugins/flytekit-aios connectors/flytekit-aios-connectors)
stamp=".venv/.aios-installed-$(cat pyproject.toml "${DISTS[@]/%//pyproject.toml}" | sha256sum | cut -c1-16)"
if [ ! -e "$stamp" ]; then
  echo "==> creating .venv and installing the pack (about 2 minutes on a fresh machine)"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  pip_install --upgrade pip setuptools wheel
  # torch first, exactly pinned: the registry serves a CPU build for this pin (a range pulls CUDA, several GB)
  pip_install "torch==2.13.0"
  # a venv made before the split has flyte-aios owning the `aios` script, which is now the core's: pip would
  # install the core's script and then delete it while it uninstalls the old flyte-aios, so remove that first
  if .venv/bin/python -m pip show -f flyte-aios 2>/dev/null | grep -qE "bin/aios$"; then
    .venv/bin/python -m pip uninstall -q -y flyte-aios
  fi
  # the governance core, the flytekit plugin and the connectors (editable), then the reference project and its
  # ML and test dependencies; pip takes the three from these folders, not from an index
  editables=(); for d in "${DISTS[@]}"; do editables+=(-e "$d"); done
  pip_install "${editables[@]}" -e ".[test]"
  rm -f .venv/.aios-installed-*; touch "$stamp"
fi
# the pack's bytecode, as a wheel's installer writes it: an editable install leaves the pack as source, and where
# Python writes no bytecode itself (PYTHONDONTWRITEBYTECODE) every `aios` command compiled each module it imports,
# at every start (benchmarks/cli_startup_bench.py); up-to-date files are skipped, a changed one is compiled again
.venv/bin/python -m compileall -q plugins connectors tasks workflows  # 0.4 s for all of them
PYTHON=.venv/bin/python ./scripts/fetch_data.sh
echo "==> setup done: .venv/bin/aios, .venv/bin/pyflyte"
