#!/usr/bin/env bash
# The test command: installs the engine with its test and ray extras (reusing the venv), then runs
# ruff and the whole pytest suite. Exits non-zero when anything fails, including "no tests".
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${STYLEFILL_VENV:-$REPO/.venv}
export STYLEFILL_VENV=$VENV

"$REPO/install/install.sh" --no-check --no-gimp --with-tests --with-ray || exit 1
cd "$REPO" || exit 1

echo "== ruff"
"$VENV/bin/ruff" check --config engine/pyproject.toml engine tests gimp_plugin install || exit 1

echo "== pytest"
"$VENV/bin/python" -m pytest "$@"
rc=$?
if [ "$rc" = 5 ]; then
    echo "pytest collected no tests: that is a failure here" >&2
    exit 1
fi
exit "$rc"
