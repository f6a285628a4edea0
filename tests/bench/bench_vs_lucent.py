"""Class visualisation, Stylefill vs torch-lucent 0.1.8, side by side in one run on this machine.

    .venv/bin/python tests/bench/bench_vs_lucent.py [--cls ladybug] [--steps 256] [--out PNG]
        [--threads 1] [--lucent-size 224]

Both sides maximise the same pre-softmax class logit of the same network (EfficientNet-Lite0,
with its own (255x - 127) / 128 input scaling) for the same number of Adam steps. Stylefill
runs `recipes.visualize` with its default settings and seed 0 (its own seeded generators);
Lucent runs `render.render_vis` from torch.manual_seed(0) with its defaults (Fourier-decorrelated
image, lr 0.05 Adam, standard transforms), except a 224 px image (--lucent-size; its default is
128) and preprocess=False (the wrapper applies the network's own scaling instead of
torchvision's ImageNet normalisation).

Prints each side's wall time and time per step, the ratio ours / Lucent (target <= 0.7), and
each result's class probability clean, after a 1 px Gaussian blur and after a 2x down-up
resample, both judged by the same `classification.robustness`. --out saves both images side by
side.

Both sides run on one CPU thread by default: on this 2-core machine, two OpenMP threads slow
EfficientNet's many small ops ~50x as soon as any other process holds a core (--threads 0
keeps torch's own default).
"""

from __future__ import annotations

import argparse
import copy
import time
from dataclasses import replace
from importlib.metadata import version

import torch
from PIL import Image, ImageDraw
from torch import nn

from stylefill.backbones import Backbone, load_backbone
from stylefill.classes import resolve_class
from stylefill.classification import robustness
from stylefill.images import to_pil
from stylefill.optvis import recipes

TARGET_RATIO = 0.7


class LiteForLucent(nn.Module):
    """EfficientNet-Lite0 on [0, 1] RGB, as a Lucent user would wrap it; fc is `net__fc`."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x * 255.0 - 127.0) / 128.0)


def run_lucent(model: nn.Module, index: int, steps: int, size: int) -> tuple[torch.Tensor, float]:
    from lucent.optvis import objectives, param, render

    torch.manual_seed(0)
    t0 = time.perf_counter()
    images = render.render_vis(model, objectives.channel("net__fc", index),
                               param_f=lambda: param.image(size), thresholds=(steps,),
                               preprocess=False, progress=False, show_image=False)
    seconds = time.perf_counter() - t0
    image = torch.from_numpy(images[-1]).permute(0, 3, 1, 2).contiguous().float()
    if image.shape[-1] != 224:
        # As render_vis shows a smaller image to the network: bilinear, align_corners=True.
        image = nn.functional.interpolate(image, size=224, mode="bilinear", align_corners=True)
    return image, seconds


def check_objective(model: nn.Module, image: torch.Tensor, index: int) -> None:
    """Lucent's channel('net__fc', index) must be minus the class logit the network outputs."""
    from lucent.modelzoo.util import get_model_layers
    from lucent.optvis import objectives, render

    assert "net__fc" in get_model_layers(model), "no layer net__fc in the Lucent wrapper"
    with torch.no_grad():
        hook = render.hook_model(model, lambda: image)
        logits = model(image)
        lucent_value = -objectives.channel("net__fc", index)(hook)
    assert torch.allclose(lucent_value, logits[:, index]), "Lucent objective is not the logit"


def side_by_side(images: list[tuple[str, torch.Tensor]], path: str) -> None:
    tiles = [to_pil(img) for _, img in images]
    w, h = tiles[0].size
    gap, label = 8, 18
    sheet = Image.new("RGB", (len(tiles) * w + (len(tiles) - 1) * gap, h + label), "white")
    draw = ImageDraw.Draw(sheet)
    for i, ((name, _), tile) in enumerate(zip(images, tiles, strict=True)):
        sheet.paste(tile, (i * (w + gap), label))
        draw.text((i * (w + gap) + 4, 3), name, fill="black")
    sheet.save(path)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cls", default="ladybug", help="class name or index (default ladybug)")
    ap.add_argument("--steps", type=int, default=256, help="optimisation steps, both sides")
    ap.add_argument("--lucent-size", type=int, default=224,
                    help="side of Lucent's parameterised image (its own default is 128)")
    ap.add_argument("--out", default=None, help="save both images side by side to this PNG")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads for both sides (0: torch's default)")
    return ap.parse_args()


def run_ours(net: Backbone, index: int, steps: int) -> tuple[recipes.VisualizationResult, float]:
    """Stylefill's default class visualisation for `steps` steps, and its wall time."""
    t0 = time.perf_counter()
    ours = recipes.visualize(net, index, seed=0,
                             settings=replace(recipes.VisualizationSettings(), iters=steps))
    return ours, time.perf_counter() - t0


def print_table(args: argparse.Namespace, net: Backbone, index: int, name: str,
                rows: list[tuple[str, float, torch.Tensor, dict[str, float]]]) -> None:
    """The settings of both sides, then per side: wall time, time per step, image size and the
    class probability clean, blurred and resampled."""
    s = recipes.VisualizationSettings()
    print(f"class {name} ({index}), {args.steps} steps, backbone {net.name}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"  stylefill: recipes.visualize defaults: {s.param} param, {net.input_size} px, "
          f"lr {s.lr}, robust transforms {s.robust}, tv {s.tv}, alpha {s.alpha}, "
          f"patch {s.patch}, seed 0")
    print(f"  lucent {version('torch-lucent')}: render_vis defaults (param.image fft + "
          f"decorrelate, Adam lr 5e-2, standard_transforms) but param.image({args.lucent_size}), "
          f"preprocess=False, objective channel('net__fc', {index}) = class logit")
    print(f"{'':10}{'wall s':>9}{'ms/step':>10}{'image':>10}{'clean':>9}{'blur':>9}"
          f"{'resample':>10}")
    for label, t, img, rob in rows:
        size = "x".join(str(d) for d in img.shape[-2:])
        if label == "lucent" and args.lucent_size != img.shape[-1]:
            size = f"{args.lucent_size}->{img.shape[-1]}"
        print(f"{label:10}{t:9.1f}{t / args.steps * 1000:10.1f}{size:>10}{rob['clean']:9.4f}"
              f"{rob['blur 1px']:9.4f}{rob['2x bicubic']:10.4f}")


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    net = load_backbone("efficientnet-lite0")
    index, name = resolve_class(args.cls, net.categories)
    # A copy, so that the forward hooks render_vis leaves behind never touch our backbone.
    lucent_model = LiteForLucent(copy.deepcopy(net.net)).eval()

    # Warm-up: one forward+backward through the shared network before either side is timed.
    x = torch.full((1, 3, net.input_size, net.input_size), 0.5, requires_grad=True)
    net(x).logits[0, index].backward()

    ours, t_ours = run_ours(net, index, args.steps)
    lucent_image, t_lucent = run_lucent(lucent_model, index, args.steps, args.lucent_size)
    check_objective(lucent_model, lucent_image, index)

    print_table(args, net, index, name, [
        ("stylefill", t_ours, ours.image, robustness(net, ours.image, index)),
        ("lucent", t_lucent, lucent_image, robustness(net, lucent_image, index))])
    ratio = t_ours / t_lucent
    verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
    print(f"time ratio stylefill / lucent {ratio:.2f}  (target <= {TARGET_RATIO}: {verdict})")
    print(f"stylefill top-1 {ours.top1}")

    if args.out:
        side_by_side([("Stylefill", ours.image), (f"Lucent {version('torch-lucent')}",
                                                  lucent_image)], args.out)
        print(f"saved {args.out}")


if __name__ == "__main__":
    main()
