#!/usr/bin/env bash
# One-step install of the Stylefill engine (virtual environment) and its GIMP 3 plug-in, then the
# main job (suggest + insert in a learned style) on a photo that ships with scikit-image.
#
#   install/install.sh            # venv at ./.venv (or $STYLEFILL_VENV), engine installed, self-check
#   install/install.sh --no-check # install only
#   install/install.sh --gimp-dir DIR  # the GIMP 3 profile (or its plug-ins folder) to install into
#   install/install.sh --no-gimp       # engine only, no GIMP plug-in
#   install/install.sh --service       # also run the engine as a systemd user service (Flatpak/Snap GIMP)
#   install/install.sh --with-ray      # also Ray, for --ray runs on this machine or a cluster (docs/scale.md)
#   install/install.sh --uninstall     # remove the GIMP plug-in files (and the service) it installed
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${STYLEFILL_VENV:-$REPO/.venv}
PYTHON=${PYTHON:-python3}
CHECK=1
EXTRAS=""
GIMP=1
GIMP_DIR=""
UNINSTALL=0
SERVICE=0
while [ $# -gt 0 ]; do
    case "$1" in
        --no-check) CHECK=0 ;;
        --with-tests) EXTRAS="$EXTRAS,test" ;;
        --with-ray) EXTRAS="$EXTRAS,ray" ;;
        --no-gimp) GIMP=0 ;;
        --gimp-dir) [ $# -ge 2 ] || { echo "install.sh: --gimp-dir needs a folder" >&2; exit 2; }
                    GIMP_DIR=$2; shift ;;
        --gimp-dir=*) GIMP_DIR=${1#--gimp-dir=} ;;
        --uninstall) UNINSTALL=1 ;;
        --service) SERVICE=1 ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

# GIMP plug-in: install/gimp_plugin.py (stdlib only) finds the GIMP 3 profiles (distro,
# Flatpak, macOS), copies gimp_plugin/stylefill/ there, writes stylefill.json and a manifest.
gimp_plugin() {
    if [ -n "$GIMP_DIR" ]; then set -- "$@" --gimp-dir "$GIMP_DIR"; fi
    "${GIMP_PYTHON:-$PYTHON}" "$REPO/install/gimp_plugin.py" "$@"
}
if [ "$UNINSTALL" = 1 ]; then
    printf '\n== %s\n' "removing the Stylefill GIMP plug-in"
    gimp_plugin uninstall
    "$PYTHON" "$REPO/install/service.py" uninstall
    exit 0
fi

step() { printf '\n== %s\n' "$*"; }

"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
    || { echo "Stylefill needs Python 3.10 or newer ($PYTHON is older)" >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
    step "creating virtual environment $VENV"
    "$PYTHON" -m venv "$VENV"
fi
step "installing the engine (torch 2.14.1 + torchvision 0.29.1 and friends) into $VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e "$REPO/engine${EXTRAS:+[${EXTRAS#,}]}"
"$VENV/bin/stylefill" --version
if [ "$SERVICE" = 1 ]; then
    step "the engine as a systemd user service"
    "$PYTHON" "$REPO/install/service.py" install "$VENV/bin/stylefill"
fi

if [ "$GIMP" = 1 ]; then
    step "installing the GIMP 3 plug-in (Filters > Stylefill)"
    GIMP_PYTHON="$VENV/bin/python" gimp_plugin install --venv "$VENV"
fi

if [ "$CHECK" = 1 ]; then
    OUT=$REPO/out/install-check
    mkdir -p "$OUT"
    step "self-check: suggest objects for a selection, then insert one in a learned style"
    # A ladybug on scikit-learn's dahlia (tests/test_completion.py runs the same scene).
    "$VENV/bin/python" - "$OUT/dahlia.png" <<'PY'
import sys

from PIL import Image
from sklearn.datasets import load_sample_image

Image.fromarray(load_sample_image("flower.jpg")).save(sys.argv[1])
PY
    SEL=300,130,120,120
    "$VENV/bin/stylefill" suggest "$OUT/dahlia.png" --rect "$SEL" --top 5 --json "$OUT/suggest.json"
    echo "(an insert in a style of a class without styles first learns them without data: about a minute on an idle 2-core CPU, once per class, cached)"
    "$VENV/bin/stylefill" insert "$OUT/dahlia.png" --rect "$SEL" --class ladybug --style 0 \
        -o "$OUT/dahlia-ladybug.png" --layer "$OUT/ladybug-layer.png" --json "$OUT/insert.json"
    step "how natural is it: the solver's network and an independent judge (EfficientNet-Lite2)"
    "$VENV/bin/stylefill" eval naturalness "$OUT/dahlia-ladybug.png" --rect "$SEL" --class ladybug \
        -o "$OUT/naturalness.md" --json "$OUT/naturalness.json" -q
    "$VENV/bin/python" - "$OUT/naturalness.json" <<'PY'
import json
import sys

found = json.load(open(sys.argv[1]))
verdict = "passes" if found["judge_top1"] == "ladybug" else "does NOT pass"
print(f"the judge's top-1 is {found['judge_top1']!r} (p(ladybug) {found['judge']['clean']:.2f}): "
      f"the self-check {verdict} the judge")
PY
    step "done: results are in $OUT (dahlia-ladybug.png: the photo with a ladybug in style 0)"
    echo "Styles of ladybug: $VENV/bin/stylefill styles list ladybug"
    if [ "$GIMP" = 1 ]; then echo "Restart GIMP 3, select an area, then Filters > Stylefill > Insert object..."; fi
fi
