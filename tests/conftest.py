"""Shared fixtures: the real default backbone, real ImageNet samples and a real photo."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch
from filelock import FileLock

from stylefill.backbones import Backbone, load_backbone
from stylefill.images import fit_square, to_tensor
from stylefill.openmp import release_team

sys.path.insert(0, str(Path(__file__).parent / "data"))
from debian_files import HELD_OUT, fetch  # noqa: E402

# Engines the tests start (`stylefill serve`) learn no styles in the background: a class's
# minutes of learning would compete with the tests for the CPU. tests/test_style_learning.py
# turns it on where it is what is tested.
os.environ.setdefault("STYLEFILL_BACKGROUND_STYLES", "0")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every item gets a node id of its own. schemathesis' items (one per API operation,
    tests/api/test_fuzz.py) share their test function's node id under pytest 9; pytest-xdist
    (install/test.sh) tells items apart by id, and ran one of them in place of all."""
    for item in items:
        if not item.nodeid.endswith(item.name):  # pytest 9 keeps a node's id in `_id`
            item._id = item.parent.id.child(item.name)


@pytest.fixture(autouse=True)
def main_thread_without_helpers() -> None:
    """This thread hands back torch's OpenMP helpers before each test, as the engine's threads
    do (stylefill.openmp): an engine a test serves in a thread then computes at full speed."""
    release_team()


@pytest.fixture(scope="session")
def backbone() -> Backbone:
    """The default backbone (EfficientNet-Lite0, packaged weights), loaded once."""
    return load_backbone()


@pytest.fixture(scope="session")
def foolbox_images() -> list[tuple[Path, int]]:
    """The 20 ImageNet samples shipped with foolbox, as (path, label from the file name)."""
    spec = importlib.util.find_spec("foolbox")
    assert spec is not None and spec.submodule_search_locations, "foolbox (test extra) is missing"
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    found = sorted((p, int(p.stem.rsplit("_", 1)[1])) for p in data.glob("imagenet_*_*.jpg"))
    assert len(found) == 20, f"expected 20 foolbox ImageNet samples in {data}, found {len(found)}"
    return found


@pytest.fixture(scope="session")
def photo() -> torch.Tensor:
    """skimage's chelsea (a tabby cat) at network size: (1, 3, 224, 224) in [0, 1]."""
    import skimage.data
    from PIL import Image

    return to_tensor(fit_square(Image.fromarray(skimage.data.chelsea()), 224))


@pytest.fixture(scope="session")
def models_root(tmp_path_factory) -> Path:
    """An isolated models cache for tests that learn and store things (styles), sharing the
    real cache's weights and patch databases (so the default database is not rebuilt)."""
    from harness import isolated_models

    return isolated_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """An empty, private STYLEFILL_MODELS for one test module: builds and rebuilds there never
    touch the user's cache (nor another module's)."""
    with pytest.MonkeyPatch.context() as mp:
        root = tmp_path_factory.mktemp("models")
        mp.setenv("STYLEFILL_MODELS", str(root))
        yield root


@pytest.fixture(scope="session")
def ladybug_styles(backbone, models_root, tmp_path_factory):
    """Data-free styles of ladybug with the default settings, learned once per run: with
    pytest-xdist workers the first one to need them learns them into the run's shared folder,
    and each worker copies them into its own models cache."""
    from harness import isolated_models

    from stylefill import styles

    if "PYTEST_XDIST_WORKER" not in os.environ:
        return styles.learn("ladybug", backbone, data_free=True, root=models_root)
    shared = tmp_path_factory.getbasetemp().parent / "ladybug-styles"
    with FileLock(f"{shared}.lock"):
        if not styles.is_learned("ladybug", backbone.name, root=shared):
            styles.learn("ladybug", backbone, data_free=True, root=isolated_models(shared))
    index = backbone.categories.index("ladybug")
    shutil.copytree(styles.class_dir(index, "ladybug", backbone.name, shared),
                    styles.class_dir(index, "ladybug", backbone.name, models_root))
    return styles.load("ladybug", backbone, root=models_root)


def debian_file(package: str, path: str) -> Path:
    """A file from a Debian package's data (tests/data/debian_files.py), fetched on first use."""
    return fetch(package) / path


@pytest.fixture(scope="session")
def held_out_photos() -> list[Path]:
    """Table 1's ten held-out photos (Debian kphotoalbum, palapeli-data, tuxpaint-data)."""
    return [debian_file(package, name) for package, name in HELD_OUT]


@pytest.fixture(scope="session")
def grass_field() -> Path:
    """A grass playing field (Debian scratch), 480x360, kept aside as the held-out test photo
    for object insertion."""
    return debian_file("scratch", "Sports/playing-field.jpg")


@pytest.fixture(scope="session")
def strawberry_folder(tmp_path_factory) -> Path:
    """Two visually different groups of one class: strawberry photos (two sources) and a
    strawberry drawing, each placed at random sizes/positions on the same four backgrounds,
    plus one photo of another class (skimage's chelsea, a cat)."""
    import random

    import skimage.data
    from PIL import Image

    src = debian_file("tuxpaint-stamps-default", "")
    folder = tmp_path_factory.mktemp("strawberries")
    backgrounds = [(255, 255, 255), (236, 236, 236), (245, 240, 225), (225, 235, 245)]
    groups = [("photo-a", "food/fruit/strawberry.png", 6), ("photo-b", "food/fruit/Strawberry2.png", 6),
              ("cartoon", "food/fruit/cartoon/strawberry.png", 12)]
    for g, (name, file, n) in enumerate(groups):
        rnd = random.Random(g)
        obj = Image.open(src / file).convert("RGBA")
        for i in range(n):
            canvas = Image.new("RGBA", (256, 256), backgrounds[i % 4] + (255,))
            k = rnd.uniform(0.55, 0.85) * 256 / max(obj.size)
            o = obj.resize((max(1, int(obj.width * k)), max(1, int(obj.height * k))),
                           Image.Resampling.BICUBIC)
            if i % 2:
                o = o.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            canvas.alpha_composite(o, (rnd.randint(0, 256 - o.width), rnd.randint(0, 256 - o.height)))
            canvas.convert("RGB").save(folder / f"{name}-{i:02d}.jpg", quality=92)
    Image.fromarray(skimage.data.chelsea()).save(folder / "zz-cat.jpg")
    return folder
