"""End-to-end object insertion cost and blending quality, measured side by side in one run.

    .venv/bin/python tests/bench/bench_insert.py [--threads 2]

On a real grass field (Debian scratch, upscaled 3x to 1440x1080 so a 512 px selection fits with
its context), for square selections of 128, 256 and 512 px: the wall time of a default insert
of "hay" (`api.run(api.InsertRequest(...))` with no style, so no style learning; the backbone
is loaded, and cached, before), its ratio to 100 bare forward+backward passes of the backbone
measured in the same run, prob_before/prob_after, and for both blends (alpha, seamless) the
seam contrast (gradient on the selection edge over that just outside; about 1 = invisible) and
the class probability after blending; for 512 px also the optional second pass at twice the
resolution (--refine).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from units import bare_passes, grass_field, parse_with_threads

from stylefill import api
from stylefill.backbones import load_backbone


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="128,256,512")
    args = parse_with_threads(ap)
    net = load_backbone()
    photo = grass_field()
    hundred = bare_passes(net)
    print(f"torch threads {torch.get_num_threads()}; photo {photo.width}x{photo.height}")
    print(f"100 bare forward+backward passes at 224 px: {hundred:.2f} s")
    print(f"{'selection':>9} {'blend':>15} {'seconds':>8} {'ratio':>6} {'p before':>9} {'p after':>8} "
          f"{'seam':>6} {'outside':>8}")
    for side in (int(s) for s in args.sizes.split(",")):
        mask = np.zeros((photo.height, photo.width), bool)
        x0, y0 = photo.width // 2 - side // 2, int(photo.height * 0.62) - side // 2
        mask[y0:y0 + side, x0:x0 + side] = True
        variants = [("alpha", False), ("seamless", False)] + ([("seamless", True)] if side >= 512 else [])
        for blend, refine in variants:
            t0 = time.perf_counter()
            res = api.run(api.InsertRequest(image=photo, selection=mask, cls="hay", blend=blend,
                                            refine=refine, backbone=net.name))
            sec = time.perf_counter() - t0
            m = res.metrics
            label = blend + ("+refine" if refine else "")
            print(f"{side:>7}px {label:>15} {sec:8.1f} {sec / hundred:6.2f} {m['prob_before']:9.3f} "
                  f"{m['prob_after']:8.3f} {m['seam']:6.2f} {m['outside_changed_pixels']:8d}", flush=True)


if __name__ == "__main__":
    main()
