#!/usr/bin/env bash
# One-step install of the Stylefill engine into a virtual environment, then a short main job
# on a photo that ships with scikit-image, so you see it work.
#
#   install/install.sh            # venv at ./.venv (or $STYLEFILL_VENV), engine installed, self-check
#   install/install.sh --no-check # install only
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${STYLEFILL_VENV:-$REPO/.venv}
PYTHON=${PYTHON:-python3}
CHECK=1
EXTRAS=""
for arg in "$@"; do
    case "$arg" in
        --no-check) CHECK=0 ;;
        --with-tests) EXTRAS="[test]" ;;
        -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $arg" >&2; exit 2 ;;
    esac
done

step() { printf '\n== %s\n' "$*"; }

"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
    || { echo "Stylefill needs Python 3.10 or newer ($PYTHON is older)" >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
    step "creating virtual environment $VENV"
    "$PYTHON" -m venv "$VENV"
fi
step "installing the engine (torch 2.14.1 + torchvision 0.29.1 and friends) into $VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e "$REPO/engine$EXTRAS"
"$VENV/bin/stylefill" --version

if [ "$CHECK" = 1 ]; then
    OUT=$REPO/out/install-check
    mkdir -p "$OUT"
    step "self-check: classify and invert a photo that ships with scikit-image"
    "$VENV/bin/python" - "$OUT/chelsea.png" <<'PY'
import sys

import skimage.data
from PIL import Image

Image.fromarray(skimage.data.chelsea()).save(sys.argv[1])
PY
    "$VENV/bin/stylefill" classify "$OUT/chelsea.png" --top 3 --json "$OUT/classify.json"
    "$VENV/bin/stylefill" invert "$OUT/chelsea.png" -o "$OUT/chelsea-inverted.png" \
        --json "$OUT/invert.json"
    step "done: results are in $OUT (chelsea-inverted.png is the photo rebuilt from its features)"
    echo "Try: $VENV/bin/stylefill visualize ladybug -o ladybug.png"
fi
