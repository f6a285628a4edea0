"""Solver cost, measured side by side in one run on this machine.

    .venv/bin/python tests/bench/bench_solver.py [--reps 30]

Prints: one bare network forward+backward w.r.t. the image, and U = 100 of them; for each of
Table 1's three methods, the default `recipes.invert` at 224 px (model and database loading
excluded) in seconds and in U (target <= 6 U), its solver iteration against a bare
forward+backward (the patch prior's matching every N steps amortised; target <= 1.5) and the
feature error it reached; then the default `recipes.visualize`.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from stylefill import patchdb
from stylefill.backbones import load_backbone
from stylefill.classes import resolve_class
from stylefill.evaluation import METHODS
from stylefill.images import fit_square, to_tensor
from stylefill.optvis import recipes
from stylefill.sample_photos import packaged_photos


def timed(fn, reps: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--backbone", default="efficientnet-lite0")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    net = load_backbone(args.backbone)
    db = patchdb.default_db(net)
    photo = to_tensor(fit_square(packaged_photos()["skimage:chelsea"], net.input_size))
    settings = recipes.InversionSettings()

    def fwd_bwd() -> None:
        x = photo.clone().requires_grad_(True)
        net(x).logits[0, 0].backward()

    bare = timed(fwd_bwd, args.reps)

    unit = 100 * bare
    print(f"backbone {net.name}, {torch.get_num_threads()} threads, input {net.input_size} px")
    print(f"bare forward+backward          {bare * 1000:8.1f} ms   U = 100 of them = {unit:.1f} s")
    for method, (prior, init) in METHODS.items():
        t0 = time.perf_counter()
        inv = recipes.invert(net, photo, prior=prior, init=init, db=db)
        total = time.perf_counter() - t0
        per_iter = inv.seconds / settings.iters  # the solver loop only, prior matching included
        print(f"invert {method:9s} ({settings.iters} it)  {total:6.1f} s = {total / unit:4.2f} U "
              f"(target <= 6)   iteration / fwd+bwd {per_iter / bare:5.2f} (target <= 1.5)   "
              f"feature_error {inv.feature_error:.4f}")
    ladybug, _ = resolve_class("ladybug", net.categories)
    t0 = time.perf_counter()
    vis = recipes.visualize(net, ladybug)
    t_vis = time.perf_counter() - t0
    print(f"default visualize ({recipes.VisualizationSettings().iters} it)   {t_vis:8.1f} s = "
          f"{t_vis / unit:4.2f} U   ladybug p={vis.prob:.3f}")


if __name__ == "__main__":
    main()
