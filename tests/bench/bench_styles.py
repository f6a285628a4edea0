"""Data-free styles of one class: how long learning takes and how distinct the styles are.

    OMP_NUM_THREADS=1 .venv/bin/python tests/bench/bench_styles.py [--cls ladybug] [--threads N]

Learns data-free styles into a temporary models root (symlinks to the real weights and patch
databases, so nothing else is rebuilt) and prints: the wall time of learning and its parts
(sampling pathways, fc7 + NMF, previews, saving; from the progress callback's stages), also in
units of one default `recipes.visualize` measured in the same run (so the number travels between
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from stylefill import styles
from stylefill.backbones import Backbone, load_backbone
from stylefill.classes import resolve_class
from stylefill.images import load_tensor, to_pil, to_tensor
from stylefill.optvis import recipes
from stylefill.paths import models_dir


def cosine_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True).clip(1e-12)
    b = b / np.linalg.norm(b, axis=1, keepdims=True).clip(1e-12)
    return np.clip(1.0 - a @ b.T, 0.0, 2.0)


def stage_part(stage: str) -> str:
    """The part of learning a progress stage belongs to."""
    for prefix, part in (("sampling", "sampling"), ("factorising", "fc7 + NMF"),
                         ("preview", "previews"), ("saving", "saving")):
        if stage.startswith(prefix):
            return part
    return stage


def temporary_models() -> Path:
    """A fresh models root that shares the real weights and patch databases."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-styles-"))
    real = models_dir()
    for name in ("weights", "patchdb"):
        if (real / name).exists():
            (tmp / name).symlink_to(real / name, target_is_directory=True)
    return tmp


def learn_timed(net: Backbone, cls: str, seed: int,
                root: Path) -> tuple[styles.StyleSet, float, list[tuple[str, float]]]:
    """Learn data-free styles into `root`: the styles, the wall time and (part, seconds) in
    order, from the progress callback's stages."""
    marks: dict[str, float] = {}

    def progress(_fraction: float, stage: str, _preview: object) -> None:
        marks.setdefault(stage_part(stage), time.perf_counter())

    t0 = time.perf_counter()
    ss = styles.learn(cls, net, data_free=True, seed=seed, root=root, progress=progress)
    t_end = time.perf_counter()
    order = sorted(marks.items(), key=lambda kv: kv[1])
    parts = [(name, (order[i + 1][1] if i + 1 < len(order) else t_end) - start)
             for i, (name, start) in enumerate(order)]
    return ss, t_end - t0, parts


def rerun_previews(net: Backbone, ss: styles.StyleSet, seed: int) -> torch.Tensor:
    """Each style's preview made again with another seed, through 8 bits like the stored ones."""
    reruns = []
    for s in ss.styles:
        rerun = styles.draw_preview(net, ss.index, ss.m7(s.id), styles.top_image(ss, s.id), seed=seed)
        reruns.append(to_tensor(to_pil(rerun)))
    return torch.cat(reruns)


@dataclass
class Measured:
    """Everything the report prints."""

    t_unit: float             # one default visualize
    unit_prob: float
    t_learn: float
    parts: list[tuple[str, float]]
    ss: styles.StyleSet
    p_cls: list[float]        # each preview's class probability and top-1 (clean network)
    top1: list[str]
    between: np.ndarray       # fc7 cosine distances between the previews
    same: np.ndarray          # per style: preview vs rerun with another seed
    t_reruns: float


def measure(net: Backbone, cls: str, seed: int, rerun_seed: int) -> Measured:
    """One default visualize (the unit that makes the learning time comparable across
    machines), then the styles learned into a temporary models root, their previews judged by
    the clean network and compared with reruns."""
    index, _ = resolve_class(cls, net.categories)
    t0 = time.perf_counter()
    unit = recipes.visualize(net, index)
    t_unit = time.perf_counter() - t0

    tmp = temporary_models()
    try:
        ss, t_learn, parts = learn_timed(net, cls, seed, tmp)
        previews = torch.cat([load_tensor(ss.preview_path(s.id), net.input_size) for s in ss.styles])
        with torch.no_grad():
            probs = torch.softmax(net(previews).logits, dim=1)
        top1 = [net.categories[int(i)] for i in probs.argmax(1)]
        t0 = time.perf_counter()
        reruns = rerun_previews(net, ss, rerun_seed)
        t_reruns = time.perf_counter() - t0
        f_prev = styles.fc7_features(net, previews)
        f_rerun = styles.fc7_features(net, reruns)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Measured(t_unit, unit.prob, t_learn, parts, ss, probs[:, ss.index].tolist(), top1,
                    cosine_distances(f_prev, f_prev), np.diag(cosine_distances(f_prev, f_rerun)),
                    t_reruns)


def print_report(m: Measured, net: Backbone, seed: int, rerun_seed: int) -> None:
    k = len(m.ss.styles)
    off = m.between[~np.eye(k, dtype=bool)]
    print(f"backbone {net.name}, {torch.get_num_threads()} threads, class {m.ss.cls}, "
          f"data-free, seed {seed}")
    print(f"default visualize ({recipes.VisualizationSettings().iters} it)   {m.t_unit:7.1f} s   "
          f"p={m.unit_prob:.3f}  (= 1 unit)")
    print(f"learn data-free styles              {m.t_learn:7.1f} s   {m.t_learn / m.t_unit:5.2f} units")
    for name, sec in m.parts:
        print(f"  {name:32s}  {sec:7.1f} s   {sec / m.t_unit:5.2f} units")
    print(f"styles                              {k}")
    print()
    print("style  weight  units  p(class)  top-1")
    for s, p, t in zip(m.ss.styles, m.p_cls, m.top1, strict=True):
        print(f"{s.id:5d}  {s.weight:6.3f}  {s.units:5d}  {p:8.4f}  {t}")
    print()
    print("fc7 cosine distance between the styles' previews")
    print("      " + "".join(f"{j:8d}" for j in range(k)))
    for i in range(k):
        print(f"{i:5d} " + "".join(f"{m.between[i, j]:8.3f}" for j in range(k)))
    print()
    print(f"same style, seed {seed} vs seed {rerun_seed} ({m.t_reruns:.1f} s for {k} reruns)")
    for s, d in zip(m.ss.styles, m.same, strict=True):
        print(f"  style {s.id}: {d:.3f}")
    print()
    print(f"between styles  min {off.min():.3f}  mean {off.mean():.3f}  max {off.max():.3f}")
    print(f"same style      min {m.same.min():.3f}  mean {m.same.mean():.3f}  max {m.same.max():.3f}")
    print(f"ratio min(between) / max(same)   {off.min() / max(m.same.max(), 1e-12):.2f}  "
          f"(should be clearly above 1)")


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
    net = load_backbone(args.backbone)
    print_report(measure(net, args.cls, args.seed, args.rerun_seed), net, args.seed, args.rerun_seed)


if __name__ == "__main__":
    main()
