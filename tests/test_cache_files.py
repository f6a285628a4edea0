"""Hand-corrupted cache files, valid-but-wrong ones included: none is trusted.

Each case breaks one file of a real set (styles learned here in seconds, a small patch
database) the way a disk error, an old version or a hand edit could, and loads it: the loader
must refuse it, saying how to relearn or rebuild, and derived data is rebuilt. The figures
(cases tried, cases trusted) go to docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from harness import serve_in_thread
from PIL import Image

from stylefill import api, atomic, patchdb, styles
from stylefill.errors import InputError
from stylefill.sample_photos import packaged_photos
from stylefill.server import create_app

TINY = {"data_free_settings": styles.DataFreeSettings(samples=2, size=64, iters=2),
        "preview_settings": styles.PreviewSettings(iters=2), "topics": 2}
BACKBONE = "efficientnet-lite0"


@pytest.fixture(scope="module")
def pristine(backbone, tmp_path_factory) -> Path:
    """Data-free ladybug styles (2 samples, 2 styles, 2-step previews) in their own models dir."""
    root = tmp_path_factory.mktemp("pristine")
    styles.learn("ladybug", backbone, data_free=True, root=root, **TINY)
    return root


@pytest.fixture(scope="module")
def from_folder(backbone, tmp_path_factory) -> Path:
    """Strawberry styles learned from a folder of four views of one photo."""
    root, folder = tmp_path_factory.mktemp("folder-styles"), tmp_path_factory.mktemp("photos")
    photo = packaged_photos()["skimage:coffee"]
    for i, angle in enumerate((0, 90, 180, 270)):
        photo.rotate(angle, expand=True).save(folder / f"view{i}.png")
    styles.learn("strawberry", backbone, folder=folder, keep_all=True, root=root, **TINY)
    return root


def _copy(root: Path, cls: str, index: int, dest: Path) -> Path:
    """A copy of a class's stored styles under `dest`; returns the copy's current version."""
    src = styles.class_dir(index, cls, BACKBONE, root)
    target = styles.class_dir(index, cls, BACKBONE, dest)
    shutil.copytree(src, target, symlinks=True)
    return atomic.current(target)


def _edit_meta(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def breaking(version: Path) -> None:
        meta = json.loads((version / "styles.json").read_text())
        edit(meta)
        (version / "styles.json").write_text(json.dumps(meta))
    return breaking


def _set_array(key: str, change: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path], None]:
    def breaking(version: Path) -> None:
        np.save(version / f"{key}.npy", change(np.load(version / f"{key}.npy")))
    return breaking


def _truncate(name: str) -> Callable[[Path], None]:
    def breaking(version: Path) -> None:
        data = (version / name).read_bytes()
        (version / name).write_bytes(data[: len(data) // 2])
    return breaking


def _nan_first(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.flat[0] = np.nan
    return a


def _style0(key: str, value) -> Callable[[Path], None]:
    return _edit_meta(lambda m: m["styles"][0].__setitem__(key, value))


def _symlink_preview(version: Path) -> None:
    (version / "preview_0.png").unlink()
    (version / "preview_0.png").symlink_to("/etc/passwd")


def _jpeg_preview(version: Path) -> None:
    Image.open(version / "preview_0.png").convert("RGB").save(version / "preview_0.png", "JPEG")


def _pointer(text: str) -> Callable[[Path], None]:
    def breaking(version: Path) -> None:
        (version.parent / atomic.POINTER).write_text(text)
    return breaking


STYLE_CASES = {
    "preview path ../../etc/passwd": _style0("preview", "../" * 24 + "etc/passwd"),
    "preview path /etc/passwd": _style0("preview", "/etc/passwd"),
    "preview a symlink to /etc/passwd": _symlink_preview,
    "sample name escaping its folder": _edit_meta(
        lambda m: m["styles"][0]["images"].__setitem__(0, "../" * 24 + "etc/hostname")),
    "preview truncated PNG": _truncate("preview_0.png"),
    "preview a JPEG": _jpeg_preview,
    "sample truncated PNG": _truncate("sample_00.png"),
    "masks uint8 instead of bool": _set_array("masks", lambda a: a.astype(np.uint8)),
    "masks all empty": _set_array("masks", np.zeros_like),
    "directions with NaN": _set_array("directions", _nan_first),
    "directions float64": _set_array("directions", lambda a: a.astype(np.float64)),
    "directions negative": _set_array("directions", lambda a: -a),
    "loadings infinite": _set_array("loadings", lambda a: a * np.inf),
    "features one row short": _set_array("features", lambda a: a[:-1]),
    "features truncated file": _truncate("features.npy"),
    "directions an extra style": _set_array("directions", lambda a: np.vstack([a, a[:1]])),
    "styles.json truncated": _truncate("styles.json"),
    "styles.json weight a string": _style0("weight", "0.5"),
    "styles.json weight NaN": _style0("weight", float("nan")),
    "styles.json units not the mask's": _style0("units", 1),
    "styles.json ids out of order": _style0("id", 1),
    "styles.json of another class": _edit_meta(lambda m: m.__setitem__("index", 7)),
    "styles.json unknown source": _edit_meta(lambda m: m.__setitem__("source", "web")),
    "styles.json a style too many": _edit_meta(lambda m: m["styles"].append(m["styles"][0])),
    "pointer to ../../etc": _pointer("../../etc"),
    "pointer to a missing version": _pointer("v-missing"),
}


@pytest.mark.parametrize("case", STYLE_CASES)
def test_no_damaged_data_free_styles_are_trusted(pristine, tmp_path, case):
    version = _copy(pristine, "ladybug", 301, tmp_path)
    STYLE_CASES[case](version)
    with pytest.raises(InputError, match=r"damaged .*relearn them with"):
        styles.load("ladybug", root=tmp_path)
    assert not styles.is_learned("ladybug", root=tmp_path)  # whoever needs them relearns them


FOLDER_CASES = {
    "photo outside the learned folder": lambda photos: "/etc/passwd",
    "photo escaping with ..": lambda photos: photos[0].rsplit("/", 1)[0] + "/../../etc/passwd",
    "photo the folder itself": lambda photos: photos[0].rsplit("/", 1)[0],
}


@pytest.mark.parametrize("case", FOLDER_CASES)
def test_no_folder_styles_naming_files_outside_their_folder_are_trusted(from_folder, tmp_path,
                                                                        case):
    """Styles from a user's folder are not relearned behind their back: the load says which
    command relearns them, with that folder."""
    version = _copy(from_folder, "strawberry", 949, tmp_path)
    meta = json.loads((version / "styles.json").read_text())
    meta["styles"][0]["images"][0] = FOLDER_CASES[case](meta["styles"][0]["images"])
    (version / "styles.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match=f"damaged .*--from {meta['source'][7:]}"):
        styles.load("strawberry", root=tmp_path)
    assert styles.is_learned("strawberry", root=tmp_path)  # not replaced by data-free ones


def test_sound_copies_load_and_damaged_data_free_styles_are_relearned(pristine, tmp_path,
                                                                      backbone, monkeypatch):
    _copy(pristine, "ladybug", 301, tmp_path)
    good = styles.load("ladybug", root=tmp_path)
    assert len(good.styles) == 2 and good.masks.dtype == bool
    _set_array("directions", _nan_first)(good.root)
    monkeypatch.setattr(styles, "learn", partial(styles.learn, **TINY))  # seconds, not minutes
    relearned = styles.load_or_learn("ladybug", backbone, root=tmp_path, seed=0)
    assert np.isfinite(relearned.directions).all() and relearned.source == "data-free"
    folder = relearned.root.parent
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [atomic.LOCK, atomic.POINTER, relearned.root.name])  # the damaged version is gone


def test_the_server_never_serves_a_preview_outside_the_styles_folder(pristine, tmp_path,
                                                                     monkeypatch):
    """The issue's probe: a preview path of ../../../../../../etc/passwd in styles.json made
    GET /v1/styles/ladybug/0/preview.png serve /etc/passwd."""
    monkeypatch.setenv("STYLEFILL_MODELS", str(tmp_path))
    version = _copy(pristine, "ladybug", 301, tmp_path)
    STYLE_CASES["preview path ../../etc/passwd"](version)
    app = create_app("cache-files-token", background_styles=False)
    for engine in serve_in_thread(app, "cache-files-token"):
        with engine.client() as client:
            answer = client.get("/v1/styles/ladybug/0/preview.png")
            listing = client.get("/v1/styles/ladybug")
    assert answer.status_code in (404, 409, 422), answer.status_code
    assert b"root:" not in answer.content and "damaged" in answer.json()["detail"]
    assert listing.status_code != 200 and "root:" not in listing.text


# ------------------------------------------------------------------------- patch databases

@pytest.fixture(scope="module")
def photo_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("db-photos") / "coffee.png"
    packaged_photos()["skimage:coffee"].save(path)
    return path


@pytest.fixture(scope="module")
def built(models, backbone, photo_file) -> Path:
    """A one-photo database (4 crops) whose recipe names a file, so it can be rebuilt."""
    patchdb.build([photo_file], backbone, "tiny", scales=(1.0,), flips=True)
    return patchdb.db_root(backbone.name) / "tiny"


def _db_array(key: str, change: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path], None]:
    def breaking(version: Path) -> None:
        a = np.load(version / f"{key}.npy")
        (version / f"{key}.npy").unlink()  # a memory map of the old file may still be open
        np.save(version / f"{key}.npy", change(a))
    return breaking


def _db_meta(key: str, value) -> Callable[[Path], None]:
    def breaking(version: Path) -> None:
        meta = json.loads((version / "meta.json").read_text())
        meta[key] = value
        (version / "meta.json").write_text(json.dumps(meta))
    return breaking


def _colour(mean) -> Callable[[Path], None]:
    def breaking(version: Path) -> None:
        np.savez(version / "colour.npz", mean=np.asarray(mean), cov=np.eye(3))
    return breaking


DB_CASES = {
    "patches.npy shorter than the index": _db_array("patches", lambda a: a[: len(a) // 2]),
    "features float32 instead of float16": _db_array("features", lambda a: a.astype(np.float32)),
    "features with NaN": _db_array("features", _nan_first),
    "sources naming crops that do not exist": _db_array("sources", lambda a: a + 1000),
    "sources int64": _db_array("sources", lambda a: a.astype(np.int64)),
    "stats with NaN": _db_array("stats", _nan_first),
    "stats of one crop too few": _db_array("stats", lambda a: a[:-1]),
    "colour mean NaN": _colour([np.nan, 0.5, 0.5]),
    "colour mean of 2 channels": _colour([0.5, 0.5]),
    "meta count not the arrays'": _db_meta("count", 7),
    "meta patch size wrong": _db_meta("patch_px", 32),
    "meta another backbone": _db_meta("backbone", "alexnet"),
    "meta count a string": _db_meta("count", "196"),
    "index truncated": _truncate("index.faiss"),
    "pointer to ../../etc": _pointer("../../etc"),
}


UNREBUILDABLE = {"meta count a string", "pointer to ../../etc"}  # no readable recipe left


@pytest.mark.parametrize("case", DB_CASES)
def test_no_damaged_patch_database_is_trusted_and_it_is_rebuilt(built, backbone, photo_file,
                                                                case):
    """Every case is refused on load; opening it rebuilds it from the photos and settings its
    meta.json records, or, when that is unreadable, says how to rebuild it."""
    broken = built.parent / "broken"
    atomic.remove(broken)
    shutil.copytree(built, broken, symlinks=True)
    DB_CASES[case](atomic.current(broken))
    with pytest.raises(InputError, match=r"damaged .*patchdb build .*--name broken"):
        patchdb.load(backbone.name, "broken")
    if case in UNREBUILDABLE:
        with pytest.raises(InputError, match="damaged .*patchdb build"):
            patchdb.open_db(backbone, "broken")
        return
    db = patchdb.open_db(backbone, "broken")
    assert len(db.patches) == len(db.features) == db.index.ntotal == db.meta["count"]
    assert db.meta["images"] == [str(photo_file)] and np.isfinite(db.stats).all()
    assert patchdb.load(backbone.name, "broken").path == db.path


def test_invert_with_a_short_patches_file_rebuilds_the_database(built, backbone, photo_file):
    """The issue's probe: a patches.npy shorter than the index made every invert fail with
    "internal error (IndexError)", and the database was never rebuilt."""
    short = built.parent / "short"
    atomic.remove(short)
    shutil.copytree(built, short, symlinks=True)
    DB_CASES["patches.npy shorter than the index"](atomic.current(short))
    out = api.run(api.InvertRequest(image=photo_file, database="short", iters=2))
    assert out.image is not None
    db = patchdb.load(backbone.name, "short")
    assert len(db.patches) == db.index.ntotal


def test_a_damaged_database_without_its_photos_says_how_to_rebuild(built, backbone, tmp_path):
    photo = tmp_path / "gone.png"
    packaged_photos()["skimage:chelsea"].save(photo)
    patchdb.build([photo], backbone, "orphan", scales=(1.0,), flips=False)
    os.remove(photo)
    DB_CASES["features with NaN"](atomic.current(built.parent / "orphan"))
    with pytest.raises(InputError, match="damaged .*patchdb build .*--name orphan"):
        patchdb.open_db(backbone, "orphan")
