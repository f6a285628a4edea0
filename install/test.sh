#!/usr/bin/env bash
# The test command: installs the engine with its test extras (reusing the venv), then runs
# ruff and the whole pytest suite. Exits non-zero when anything fails, including "no tests".
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${STYLEFILL_VENV:-$REPO/.venv}
export STYLEFILL_VENV=$VENV

"$REPO/install/install.sh" --no-check --no-gimp --with-tests || exit 1
cd "$REPO" || exit 1

echo "== ruff"
"$VENV/bin/ruff" check --config engine/pyproject.toml engine tests gimp_plugin install || exit 1

no_tests() {
    echo "pytest collected no tests: that is a failure here" >&2
    exit 1
}

if [ $# -gt 0 ]; then  # a chosen part of the suite: as asked
    echo "== pytest $*"
    "$VENV/bin/python" -m pytest "$@"
    rc=$?
    [ "$rc" = 5 ] && no_tests
    exit "$rc"
fi

# The whole suite. Its longest test, Table 1 on ten held-out photos (30 inversions), runs on one
# thread in a second pytest beside the rest, so the two cores overlap. The rest keeps torch's
# default threads: learned data-free styles depend on the thread count (docs/styles.md).
SLOW=tests/test_evaluation.py::test_table1_at_matched_features_on_held_out_photos
SIDE=$(mktemp -d)
trap 'rm -rf "$SIDE"' EXIT
echo "== pytest (and $SLOW beside it)"
OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 "$VENV/bin/python" -m pytest "$SLOW" -p no:cacheprovider \
    --basetemp "$SIDE/tmp" >"$SIDE/log" 2>&1 &
side=$!
"$VENV/bin/python" -m pytest --deselect "$SLOW"
rc=$?
wait "$side"
side_rc=$?
echo "== pytest $SLOW (ran beside the rest)"
cat "$SIDE/log"
if [ "$rc" = 5 ] || [ "$side_rc" = 5 ]; then
    no_tests
fi
[ "$rc" = 0 ] && [ "$side_rc" = 0 ] && exit 0
exit 1
