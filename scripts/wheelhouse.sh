#!/bin/sh
# Download the wheels the tests build job environments from, so that tests run offline.
# Usage: PY=.venv/bin/python scripts/wheelhouse.sh [DEST]   (DEST defaults to ./wheelhouse)
# Re-running is a no-op once DEST holds the list below (so `make test` needs no network
# after the first time).
set -eu
cd "$(dirname "$0")/.."
DEST="${1:-$PWD/wheelhouse}"
PY="${PY:-.venv/bin/python}"
# six, attrs: small third-party packages; croniter==6.2.4: an older pin of one of
# localtailr's own dependencies; flask, fastapi, uvicorn: apps in runtime tests.
# datatailr==0.2.3 (and requests): the genuine SDK, installed in the environment of every job
# deployed through `dt` and in the parity suite's SDK environment. streamlit (~110 MB with its
# dependencies): the real streamlit app served at / and under its prefix, websocket included.
WANTED="six attrs croniter==6.2.4 flask fastapi uvicorn datatailr==0.2.3 streamlit"
mkdir -p "$DEST"
if [ -f "$DEST/.wanted" ] && [ "$(cat "$DEST/.wanted")" = "$WANTED" ]; then
  exit 0
fi
# shellcheck disable=SC2086
"$PY" -m pip download -q --disable-pip-version-check -d "$DEST" --only-binary=:all: $WANTED
echo "$WANTED" > "$DEST/.wanted"
