"""Data-free styles of one class: how long learning takes and how distinct the styles are.

    OMP_NUM_THREADS=1 .venv/bin/python tests/bench/bench_styles.py [--cls ladybug] [--threads N]

Learns data-free styles into a temporary models root (symlinks to the real weights and patch
databases, so nothing else is rebuilt) and prints: the wall time of learning and its parts
(sampling pathways, fc7 + NMF, previews, saving; from the progress callback's stages), also in
units of one default `visualize` measured in the same run (so the number travels between
machines); each preview's class probability and top-1 under the clean network; the pairwise fc7
cosine distances between the styles' previews; for each style the distance between its preview
and a rerun of the same style with another seed; and min(between styles) / max(same style),
which should be clearly above 1.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from stylefill import api, styles
from stylefill.api import VisualizationSettings
from stylefill.backbones import Masks, load_backbone
from stylefill.images import load_tensor, to_pil, to_tensor
from stylefill.paths import models_dir


def cosine_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True).clip(1e-12)
    b = b / np.linalg.norm(b, axis=1, keepdims=True).clip(1e-12)
    return np.clip(1.0 - a @ b.T, 0.0, 2.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cls", default="ladybug")
    ap.add_argument("--backbone", default="efficientnet-lite0")
    ap.add_argument("--seed", type=int, default=0, help="seed of the learned styles")
    ap.add_argument("--rerun-seed", type=int, default=1, help="seed of the same-style reruns")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = load_backbone(args.backbone)

    # one default visualize: the unit that makes the learning time comparable across machines
    t0 = time.perf_counter()
    unit = api.visualize(args.cls, net)
    t_unit = time.perf_counter() - t0

    tmp = Path(tempfile.mkdtemp(prefix="bench-styles-"))
    real = models_dir()
    for name in ("weights", "patchdb"):
        if (real / name).exists():
            (tmp / name).symlink_to(real / name, target_is_directory=True)
    marks: dict[str, float] = {}

    def progress(_fraction: float, stage: str, _preview: object) -> None:
        part = ("sampling" if stage.startswith("sampling") else
                "fc7 + NMF" if stage.startswith("factorising") else
                "previews" if stage.startswith("preview") else
                "saving" if stage.startswith("saving") else stage)
        marks.setdefault(part, time.perf_counter())

    try:
        t0 = time.perf_counter()
        ss = styles.learn(args.cls, net, data_free=True, seed=args.seed, root=tmp, progress=progress)
        t_learn = time.perf_counter() - t0
        t_end = time.perf_counter()
        order = sorted(marks.items(), key=lambda kv: kv[1])
        parts = [(name, (order[i + 1][1] if i + 1 < len(order) else t_end) - start)
                 for i, (name, start) in enumerate(order)]

        k = len(ss.styles)
        previews = torch.cat([load_tensor(ss.preview_path(s.id), net.input_size) for s in ss.styles])
        with torch.no_grad():
            probs = torch.softmax(net(previews).logits, dim=1)
        top1 = [net.categories[int(i)] for i in probs.argmax(1)]
        p_cls = probs[:, ss.index].tolist()

        t0 = time.perf_counter()
        reruns = []
        for s in ss.styles:
            res = api.visualize(
                ss.index, net, seed=args.rerun_seed, masks=Masks(m7=ss.m7(s.id)),
                settings=VisualizationSettings(iters=styles.PreviewSettings.iters,
                                               patch=styles.PreviewSettings.patch),
                prior_images=styles.images_tensor(ss.image_paths(s.id, 8), net.input_size))
            reruns.append(to_tensor(to_pil(res.image)))  # through 8 bits, like the stored previews
        t_reruns = time.perf_counter() - t0
        f_prev = styles.fc7_features(net, previews)
        f_rerun = styles.fc7_features(net, torch.cat(reruns))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    between = cosine_distances(f_prev, f_prev)
    same = np.diag(cosine_distances(f_prev, f_rerun))
    off = between[~np.eye(k, dtype=bool)]

    print(f"backbone {net.name}, {torch.get_num_threads()} threads, class {ss.cls}, "
          f"data-free, seed {args.seed}")
    print(f"default visualize ({api.VisualizationSettings().iters} it)   {t_unit:7.1f} s   "
          f"p={unit.prob:.3f}  (= 1 unit)")
    print(f"learn data-free styles              {t_learn:7.1f} s   {t_learn / t_unit:5.2f} units")
    for name, sec in parts:
        print(f"  {name:32s}  {sec:7.1f} s   {sec / t_unit:5.2f} units")
    print(f"styles                              {k}")
    print()
    print("style  weight  units  p(class)  top-1")
    for s, p, t in zip(ss.styles, p_cls, top1, strict=True):
        print(f"{s.id:5d}  {s.weight:6.3f}  {s.units:5d}  {p:8.4f}  {t}")
    print()
    print("fc7 cosine distance between the styles' previews")
    print("      " + "".join(f"{j:8d}" for j in range(k)))
    for i in range(k):
        print(f"{i:5d} " + "".join(f"{between[i, j]:8.3f}" for j in range(k)))
    print()
    print(f"same style, seed {args.seed} vs seed {args.rerun_seed} "
          f"({t_reruns:.1f} s for {k} reruns)")
    for s, d in zip(ss.styles, same, strict=True):
        print(f"  style {s.id}: {d:.3f}")
    print()
    print(f"between styles  min {off.min():.3f}  mean {off.mean():.3f}  max {off.max():.3f}")
    print(f"same style      min {same.min():.3f}  mean {same.mean():.3f}  max {same.max():.3f}")
    print(f"ratio min(between) / max(same)   {off.min() / max(same.max(), 1e-12):.2f}  "
          f"(should be clearly above 1)")


if __name__ == "__main__":
    main()
