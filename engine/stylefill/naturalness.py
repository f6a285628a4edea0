"""Is a result natural, or adversarial texture for the network it was optimised against?

Three kinds of evidence on one view of the result (the image's centre square, or for an edit
the square context crop around the selection, as insert sees it), at the solver's input size:
- the class probability under the solver's network, clean and after the blur, resampling and
  JPEG a photo survives (TRANSFORMS);
- the same under the judge network (EfficientNet-Lite2), which no objective may use;
- photo statistics: the high-frequency share, spectral slope and mean luminance of the image,
  or of the fill beside those of the photo around it;
- for an edit, the class probability of the object alone (its selection's box, as modify reads
  an object) under both networks: an object, not texture the context makes sense of.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from .backbones import Backbone
from .classification import TRANSFORMS, class_prob, object_view, robustness, transformed
from .completion import InsertSettings
from .images import fit_square, to_tensor
from .judge import Judge
from .photo_stats import SpectrumStats, around, spectrum_stats
from .regions import context_box, crop, selection_box


@dataclass
class Naturalness:
    cls: str
    index: int
    view: str                          # "image" or "context crop WxH at x,y"
    solver: dict[str, float]           # class probability per TRANSFORMS, solver's network
    judge: dict[str, float]            # ... and under the judge
    judge_top1: str                    # what the judge sees in the clean view
    image: SpectrumStats               # the whole view
    fill: SpectrumStats | None = None  # an edit's selection, and the photo around it
    surroundings: SpectrumStats | None = None
    # An edit's object by itself (classification.object_view): the clean probability under the
    # solver's network ("solver") and the judge ("judge"), and the judge's top-1 ("judge_top1").
    alone: dict[str, float | str] | None = None

    def as_json(self) -> dict:
        data = asdict(self)
        return {"class": data.pop("cls"), **data}

    def markdown(self) -> str:
        """Probabilities per transform and network, then the photo statistics."""
        lines = [f"{self.cls} ({self.view}); the judge's top-1: {self.judge_top1}", "",
                 "| network | " + " | ".join(TRANSFORMS) + " |",
                 "|---|" + "---|" * len(TRANSFORMS)]
        for name, probs in (("solver", self.solver), ("judge", self.judge)):
            lines.append(f"| {name} | " + " | ".join(f"{probs[t]:.3f}" for t in TRANSFORMS) + " |")
        lines += ["", "| region | high-frequency share | spectral slope | mean luminance |",
                  "|---|---|---|---|"]
        for name in ("image", "fill", "surroundings"):
            stats = getattr(self, name)
            if stats is not None:
                lines.append(f"| {name} | {stats.high_frequency_share:.3f} | {stats.slope:.2f} "
                             f"| {stats.luminance:.3f} |")
        if self.alone is not None:
            lines += ["", f"The object alone (its selection's box): solver {self.alone['solver']:.3f}, "
                          f"judge {self.alone['judge']:.3f}, the judge's top-1: {self.alone['judge_top1']}"]
        return "\n".join(lines) + "\n"


def naturalness(net: Backbone, judge: Judge, image: Image.Image, index: int,
                selection: np.ndarray | None = None,
                context: float = InsertSettings.context,
                min_context: int = InsertSettings.min_context) -> Naturalness:
    """The evidence on `image` (an edit's whole photo with its `selection`, or a result by
    itself) that it shows class `index` as a photo would."""
    image = image.convert("RGB")
    view, label = image, "image"
    fill = surroundings = alone = None
    if selection is not None:
        selected = selection_box(selection)
        box = context_box(selected, image.width, image.height, context, min_context)
        view = Image.fromarray(crop(np.asarray(image), box))
        label = f"context crop {box.size[0]}x{box.size[1]} at {box.x0},{box.y0}"
        fill = spectrum_stats(np.asarray(image) / 255.0, selection)
        surroundings = around(np.asarray(image) / 255.0, selected)
        obj = object_view(image, selection, net.input_size)
        judged_alone = judge.probs(obj)[0]
        alone = {"solver": class_prob(net, obj, index), "judge": float(judged_alone[index]),
                 "judge_top1": judge.categories[int(judged_alone.argmax())]}
    size = net.input_size
    shown = to_tensor(fit_square(view, size))  # the centre square, as classify sees a photo
    judged = judge.probs(transformed(shown))
    return Naturalness(net.categories[index], index, label, robustness(net, shown, index),
                       dict(zip(TRANSFORMS, map(float, judged[:, index]), strict=True)),
                       judge.categories[int(judged[0].argmax())], spectrum_stats(shown),
                       fill, surroundings, alone)

