"""Photo statistics: real photos measure as photos, noise and blur do not."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stylefill.images import load_tensor
from stylefill.photo_stats import spectrum_stats


def test_real_photos_measure_as_photos(foolbox_images):
    """The 20 foolbox ImageNet samples at 224 px: the ranges facts.md gives for photos."""
    stats = [spectrum_stats(load_tensor(path, 224)) for path, _ in foolbox_images]
    shares = [s.high_frequency_share for s in stats]
    slopes = [s.slope for s in stats]
    print("shares", np.round(shares, 3), "slopes", np.round(slopes, 2))
    assert 0.2 <= float(np.median(shares)) <= 0.5, shares
    assert 1.0 <= float(np.median(slopes)) <= 2.0, slopes


def test_noise_is_flat_and_blur_is_steep(foolbox_images):
    photo = load_tensor(foolbox_images[0][0], 224)
    noise = spectrum_stats(torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0)))
    assert noise.high_frequency_share > 0.7 and abs(noise.slope) < 0.3
    blurred = F.avg_pool2d(F.interpolate(photo, scale_factor=0.25, mode="area"), 1)
    blurred = F.interpolate(blurred, size=(224, 224), mode="bilinear", align_corners=False)
    sharp, soft = spectrum_stats(photo), spectrum_stats(blurred)
    assert soft.high_frequency_share < sharp.high_frequency_share - 0.1
    assert soft.slope > sharp.slope


def test_a_mask_measures_only_its_region(foolbox_images):
    photo = load_tensor(foolbox_images[1][0], 224)
    noisy = photo.clone()
    noisy[..., :112] = torch.rand(1, 3, 224, 112, generator=torch.Generator().manual_seed(1))
    mask = np.zeros((224, 224), bool)
    mask[:, 112:] = True
    assert spectrum_stats(noisy, mask) == spectrum_stats(photo, mask)  # the noise is outside
    assert spectrum_stats(noisy, ~mask).high_frequency_share > 0.7
    with pytest.raises(ValueError, match="selects nothing"):
        spectrum_stats(photo, np.zeros((224, 224), bool))
    tiny = np.zeros((224, 224), bool)
    tiny[:4, :4] = True
    with pytest.raises(ValueError, match="too small"):
        spectrum_stats(photo, tiny)


def test_the_mean_luminance_is_the_luma_of_the_masked_region_alone(foolbox_images):
    photo = load_tensor(foolbox_images[2][0], 224)
    grey = (photo[0] * torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(0)
    mask = np.zeros((224, 224), bool)
    mask[40:120, 60:200] = True
    assert spectrum_stats(photo).luminance == pytest.approx(float(grey.mean()), abs=1e-4)
    assert spectrum_stats(photo, mask).luminance == pytest.approx(float(grey[40:120, 60:200].mean()),
                                                                  abs=1e-4)
    assert spectrum_stats(photo * 0.5, mask).luminance == pytest.approx(
        spectrum_stats(photo, mask).luminance / 2, abs=1e-4)
