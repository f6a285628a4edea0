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
engine in this process. Both get the same photo, selection, class, seed and thread count; the
two alternate `--repeats` times, so a slow spell of the machine falls on both. Each time is the
operation alone (network loaded, one warm-up pass); the ratio per repeat and their median are
printed.
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
import time
from io import BytesIO
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from stylefill.backbones import load_backbone
from stylefill.completion import InsertSettings, fill_selection
from stylefill.optvis import recipes

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from debian_files import fetch  # noqa: E402
from units import bare_passes, parse_with_threads  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FILED = "75f131b"  # the last commit before issue 14's first change (2571b1c, 2026-12-03)
SELECTION = (560, 880, 560, 880)  # rows, columns: 320 px on the 3x grass field, as bench_naturalness

# Runs inside the old engine: argv = photo path, classes (comma list), threads, this folder (for
# units.bare_passes), the selection's rows and columns. Uses only the API both versions share:
# load_backbone, recipes.visualize, completion.fill_selection.
OLD_RUN = """
import json, sys, time
import numpy as np, torch
from PIL import Image
import stylefill
photo_path, classes, threads, bench, side = sys.argv[1:6]
torch.set_num_threads(int(threads))
sys.path.insert(0, bench)
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


def as_filed(engine: Path, photo: Path, classes: str, threads: int) -> dict:
    """The old engine's times, from a fresh interpreter that imports it first."""
    env = {**os.environ, "PYTHONPATH": str(engine)}
    side = ",".join(map(str, SELECTION))
    bench = str(Path(__file__).resolve().parent)
    done = subprocess.run([sys.executable, "-c", OLD_RUN, str(photo), classes, str(threads), bench, side],
                          capture_output=True, text=True, env=env, cwd=engine)
    if done.returncode:
        sys.exit(f"the engine as filed failed:\n{done.stderr[-2000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if not Path(out["package"]).is_relative_to(engine):  # today's engine would time itself
        sys.exit(f"imported {out['package']} instead of the engine as filed")
    return out


def today(net, photo: Image.Image, classes: str) -> dict:
    """Today's times for the same work."""
    out = {"visualize": {}}
    for cls in classes.split(","):
        t0 = time.perf_counter()
        recipes.visualize(net, net.categories.index(cls))
        out["visualize"][cls] = time.perf_counter() - t0
    y0, y1, x0, x1 = SELECTION
    mask = np.zeros((photo.height, photo.width), bool)
    mask[y0:y1, x0:x1] = True
    t0 = time.perf_counter()
    fill_selection(photo, mask, net.categories.index("hay"), net, m7=None, prior_images=None,
                   modify=False, seed=0, settings=InsertSettings())
    out["insert"] = time.perf_counter() - t0
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rev", default=FILED)
    ap.add_argument("--classes", default="ladybug")
    ap.add_argument("--repeats", type=int, default=3)
    args = parse_with_threads(ap)
    threads = torch.get_num_threads()
    net = load_backbone()
    print(f"torch threads {threads}; today's U = {bare_passes(net):.2f} s", flush=True)
    field = Image.open(fetch("scratch") / "Sports/playing-field.jpg").convert("RGB")
    photo = field.resize((field.width * 3, field.height * 3), Image.Resampling.BICUBIC)
    ratios: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        engine = unpack(args.rev, Path(tmp))
        photo_path = Path(tmp) / "field.png"
        photo.save(photo_path)
        for repeat in range(args.repeats):
            old = as_filed(engine, photo_path, args.classes, threads)
            new = today(net, photo, args.classes)
            print(f"repeat {repeat + 1}: as filed U = {old['unit']:.2f} s", flush=True)
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
