"""Today's default `visualize` and `insert` against the code as it was when issue 14 was filed,
side by side in one run.

    .venv/bin/python tests/bench/bench_as_filed.py [--rev 75f131b] [--classes ladybug]
                                                   [--repeats 3] [--threads 2]

Issue 14 asks that natural results take no more than 1.3x "today's time", the time on the day
it was filed. `bench_naturalness.py` compares today's settings with the previous settings run
by today's code, whose networks have since become faster (batch norms folded, channels-last
layout: docs/tuning.md, "Speed of the networks themselves"); that measures what the new
settings cost. This bench measures what the issue names: the engine of commit `--rev` (the
last commit before the issue's first change), unpacked with `git archive` and run in a
subprocess of the same Python with its own defaults and its own networks, against today's
engine run by the same script in a subprocess of its own. Both get the same photo, selection,
class, seed and thread count; the two alternate `--repeats` times, so a slow spell of the
machine falls on both. Each time is the operation alone (network loaded, one warm-up pass);
the ratio per repeat and their median are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

from units import grass_field

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parents[1]
FILED = "75f131b"  # the last commit before issue 14's first change (2571b1c, 2026-12-03)
SELECTION = (560, 880, 560, 880)  # rows, columns: 320 px on the 3x grass field, as bench_naturalness

# Runs inside either engine: argv = photo path, classes (comma list), threads, the selection's
# rows and columns. Uses only the API both versions share: load_backbone, recipes.visualize,
# completion.fill_selection (and units.bare_passes, from this folder).
TIMED = """
import json, sys, time
import numpy as np, torch
from PIL import Image
import stylefill
photo_path, classes, threads, side = sys.argv[1:5]
torch.set_num_threads(int(threads))
from units import bare_passes
from stylefill.backbones import load_backbone
from stylefill.completion import InsertSettings, fill_selection
from stylefill.optvis import recipes
net = load_backbone()
out = {"unit": bare_passes(net), "visualize": {}, "package": stylefill.__file__}
for cls in classes.split(","):
    t0 = time.perf_counter()
    recipes.visualize(net, net.categories.index(cls))
    out["visualize"][cls] = time.perf_counter() - t0
photo = Image.open(photo_path).convert("RGB")
mask = np.zeros((photo.height, photo.width), bool)
y0, y1, x0, x1 = map(int, side.split(","))
mask[y0:y1, x0:x1] = True
t0 = time.perf_counter()
fill_selection(photo, mask, net.categories.index("hay"), net, m7=None, prior_images=None,
               modify=False, seed=0, settings=InsertSettings())
out["insert"] = time.perf_counter() - t0
print(json.dumps(out))
"""


def unpack(rev: str, into: Path) -> Path:
    """The engine package of commit `rev`, unpacked under `into`."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "engine"],
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "engine"


def timed(engine: Path, photo: Path, classes: str, threads: int) -> dict:
    """The times of `engine` (a folder holding the stylefill package), from a fresh interpreter
    that imports it before any other."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(engine), str(BENCH)))}
    side = ",".join(map(str, SELECTION))
    done = subprocess.run([sys.executable, "-c", TIMED, str(photo), classes, str(threads), side],
                          capture_output=True, text=True, env=env, cwd=engine)
    if done.returncode:
        sys.exit(f"the engine in {engine} failed:\n{done.stderr[-2000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if not Path(out["package"]).is_relative_to(engine):  # the other engine would time itself
        sys.exit(f"imported {out['package']} instead of the engine in {engine}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rev", default=FILED)
    ap.add_argument("--classes", default="ladybug")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="torch threads of both engines")
    args = ap.parse_args()
    ratios: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        filed = unpack(args.rev, Path(tmp))
        photo = Path(tmp) / "field.png"
        grass_field().save(photo)
        for repeat in range(args.repeats):
            old = timed(filed, photo, args.classes, args.threads)
            new = timed(REPO / "engine", photo, args.classes, args.threads)
            print(f"repeat {repeat + 1} ({args.threads} threads): U = {old['unit']:.2f} s as filed, "
                  f"{new['unit']:.2f} s today", flush=True)
            pairs = [(f"visualize {cls}", old["visualize"][cls], new["visualize"][cls])
                     for cls in args.classes.split(",")] + [("insert hay", old["insert"], new["insert"])]
            for label, before, now in pairs:
                ratios.setdefault(label, []).append(now / before)
                print(f"  {label:18s} as filed {before:6.1f} s  today {now:6.1f} s  "
                      f"ratio {now / before:.2f}", flush=True)
    for label, values in ratios.items():
        print(f"{label}: ratio today / as filed, median {statistics.median(values):.2f} "
              f"({', '.join(f'{v:.2f}' for v in values)}); the issue's bar is 1.3")


if __name__ == "__main__":
    main()
