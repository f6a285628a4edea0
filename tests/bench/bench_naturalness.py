"""Natural results at what cost: the default visualize and insert beside the previous defaults
(visualize: Lucid's Fourier basis and Lucent's views; insert: no grain), measured side by side
in one run.

    .venv/bin/python tests/bench/bench_naturalness.py [--classes ladybug,volcano] [--threads 2]

For each class: wall time of `recipes.visualize` with the previous and the current default
settings, each as a ratio to 100 bare forward+backward passes of the backbone measured in the
same run, and `stylefill.naturalness` of both results (class probability under Lite0, its
minimum over the photo transforms, the judge's probability and top-1, the photo statistics).
Then one insert of "hay" into a 320 px square of a real grass field (Debian scratch, upscaled 3x
as in bench_insert.py) with both settings (previous: Lite0 alone, 150 steps, Poisson blend, no
grain; current: Lite0 and Lite1, 100 steps): time ratio, p_after under Lite0 and the judge, the
fill's high-frequency share beside its surroundings'. The issue's bar is a time ratio (current /
previous) of at most 1.3. A third insert grows the object out of the photo (`render_first` 0,
100 steps in context: the default before issue 14's nineteenth round, GIMP's Drawing "In the
photo"), timed against both.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import torch
from units import bare_passes, grass_field, parse_with_threads

from stylefill.backbones import load_backbone
from stylefill.completion import IN_THE_PHOTO, InsertSettings, fill_selection
from stylefill.images import to_pil
from stylefill.judge import load_judge
from stylefill.naturalness import Naturalness, naturalness
from stylefill.optvis import recipes

PREVIOUS_VISUALIZE = replace(recipes.VisualizationSettings(), param="fourier", degrade=False)
PREVIOUS_INSERT = replace(InsertSettings(), iters=150, lr=0.02, blend="seamless", param="fourier",
                          degrade=False, grain=False, second_network=False, tv=300.0, light=0.0,
                          whole=0.0, render_first=0, soften=0.0)


def row(label: str, seconds: float, unit: float, n: Naturalness) -> str:
    fill = f" fill {n.fill.high_frequency_share:.3f} / around {n.surroundings.high_frequency_share:.3f}" \
        if n.fill is not None and n.surroundings is not None else ""
    return (f"  {label:9s} {seconds:6.1f} s {seconds / unit:5.2f} U  Lite0 {n.solver['clean']:.3f} "
            f"(min {min(n.solver.values()):.3f})  judge {n.judge['clean']:.3f} ({n.judge_top1})  "
            f"hf {n.image.high_frequency_share:.3f} slope {n.image.slope:.2f}{fill}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--classes", default="ladybug,volcano")
    args = parse_with_threads(ap)
    net, judge = load_backbone(), load_judge()
    unit = bare_passes(net)
    print(f"torch threads {torch.get_num_threads()}; U = 100 bare forward+backward passes = {unit:.2f} s")
    for cls in args.classes.split(","):
        index = net.categories.index(cls)
        times = {}
        print(f"visualize {cls}")
        for label, settings in (("previous", PREVIOUS_VISUALIZE),
                                ("current", recipes.VisualizationSettings())):
            t0 = time.perf_counter()
            res = recipes.visualize(net, index, settings=settings)
            times[label] = time.perf_counter() - t0
            n = naturalness(net, judge, to_pil(res.image), index)
            print(row(label, times[label], unit, n), flush=True)
        print(f"  time ratio current / previous: {times['current'] / times['previous']:.2f}")
    photo = grass_field()
    mask = np.zeros((photo.height, photo.width), bool)
    mask[560:880, 560:880] = True
    index = net.categories.index("hay")
    times = {}
    print("insert hay, 320 px on a grass field (1440x1080)")
    for label, settings in (("previous", PREVIOUS_INSERT), ("current", InsertSettings()),
                            ("in photo", IN_THE_PHOTO)):
        t0 = time.perf_counter()
        res = fill_selection(photo, mask, index, net, m7=None, prior_images=None, modify=False, seed=0,
                             settings=settings)
        times[label] = time.perf_counter() - t0
        print(row(label, times[label], unit, naturalness(net, judge, res.photo, index, mask)), flush=True)
    print(f"  time ratio current / previous: {times['current'] / times['previous']:.2f}")
    print(f"  current / in the photo: {times['current'] / times['in photo']:.2f}; in the photo / "
          f"previous: {times['in photo'] / times['previous']:.2f}")


if __name__ == "__main__":
    main()
