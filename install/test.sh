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
# Two workers (pytest-xdist), a test file at a time each: the GIMP, HTTP and cluster tests wait on
# other processes while the other worker computes. Torch's OpenMP helpers sleep instead of
# spinning when they wait, so that two workers' teams do not take turns burning each other's CPU
# (README, "The two commands"). Arguments replace the worker options.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
if [ "$#" = 0 ]; then
    set -- -n "${STYLEFILL_TEST_WORKERS:-2}" --dist loadfile
fi
"$VENV/bin/python" -m pytest "$@"
rc=$?
if [ "$rc" = 5 ]; then
    echo "pytest collected no tests: that is a failure here" >&2
    exit 1
fi
exit "$rc"
