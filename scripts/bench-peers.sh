#!/usr/bin/env bash
# The peers `make bench` compares against, installed into the bench's OWN environment
# (.bench-venv), never into the project's dependencies. A peer that cannot be installed is
# skipped by the bench with a one-line reason; this script never fails the bench.
set -u
VENV=${1:-.bench-venv}
UV=${UV:-.venv/bin/uv}
PY=${PY:-.venv/bin/python}
[ -x "$VENV/bin/python" ] || "$UV" venv -q --python "$PY" "$VENV" || exit 0
"$UV" pip install -q --compile-bytecode --python "$VENV/bin/python" redis 'prefect>=3,<4' supervisor \
  || echo "bench peers: pip install failed; the peer rows will say skipped" >&2
if ! command -v redis-server >/dev/null; then
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  { $SUDO apt-get update -q && $SUDO apt-get install -y -q redis-server; } >/dev/null 2>&1 \
    || echo "bench peers: redis-server could not be installed; the Redis rows will say skipped" >&2
fi
exit 0
