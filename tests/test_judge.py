"""The judge network (EfficientNet-Lite2, evaluation only) recognises real photos."""

from __future__ import annotations

import torch

from stylefill.images import load_tensor
from stylefill.judge import load_judge


def test_the_judge_recognises_imagenet_samples(foolbox_images):
    judge = load_judge()
    assert judge is load_judge()  # loaded once
    photos = torch.cat([load_tensor(path, 300) for path, _ in foolbox_images])
    probs = judge.probs(photos)
    assert probs.shape == (20, 1000)
    assert torch.allclose(probs.sum(1), torch.ones(20), atol=1e-4)
    top1 = probs.argmax(1).tolist()
    hits = sum(t == label for t, (_, label) in zip(top1, foolbox_images, strict=True))
    print("judge top-1 hits:", hits, "of 20")
    assert hits >= 15
