"""ImageNet-1k class names, looked up by name (case-insensitive) or by index."""

from __future__ import annotations

import difflib
from functools import lru_cache

from .errors import InputError


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[str, ...]:
    """The 1000 names, from torchvision's weights meta (available offline)."""
    from torchvision.models import AlexNet_Weights

    return tuple(AlexNet_Weights.IMAGENET1K_V1.meta["categories"])


def resolve_class(query: str | int, categories: tuple[str, ...] | None = None) -> tuple[int, str]:
    """Return (index, name) for a class given as an index or a name; unknown names list close ones."""
    cats = categories or imagenet_classes()
    text = str(query).strip()
    if text.lstrip("-").isdigit():
        idx = int(text)
        if not 0 <= idx < len(cats):
            raise InputError(f"class index {idx} is out of range 0..{len(cats) - 1}")
        return idx, cats[idx]
    wanted = text.lower().replace("_", " ")
    lowered = [c.lower() for c in cats]
    if wanted in lowered:
        idx = lowered.index(wanted)
        return idx, cats[idx]
    close = difflib.get_close_matches(wanted, lowered, n=5, cutoff=0.6)
    contains = [c for c in lowered if wanted in c][:5]
    hints = list(dict.fromkeys(close + contains))[:5]
    hint = f"; did you mean: {', '.join(hints)}?" if hints else "; give a name or an index 0-999"
    raise InputError(f"unknown class '{text}'{hint}")
