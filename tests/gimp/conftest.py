"""Fixtures of the real-GIMP tests: GIMP 3 (Debian 13 rootfs, chroot) against the real engine
server on the host's 127.0.0.1; the helpers live in gimp_harness.py.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
from gimp_harness import (
    REPO,
    ROOTFS_SH,
    CountingProxy,
    Engine,
    Gimp,
    _run,
    start_engine,
    stop_engine,
)
from harness import isolated_models


@pytest.fixture(scope="session")
def rootfs() -> Path:
    """The cached Debian 13 rootfs with GIMP 3, /proc and /dev mounted; built when missing."""
    if os.geteuid() != 0:
        pytest.fail("the real-GIMP tests need root (mmdebstrap, chroot, mount)")
    build = _run(["bash", str(ROOTFS_SH), "build"], timeout=1800)
    if build.returncode != 0:
        pytest.fail(f"building the GIMP 3 rootfs failed:\n{build.stderr[-3000:]}")
    path = Path(build.stdout.strip().splitlines()[-1])
    mount = _run(["bash", str(ROOTFS_SH), "mount"])
    if mount.returncode != 0:
        pytest.fail(f"mounting /proc and /dev in {path} failed: {mount.stderr}")
    yield path
    # /proc and /dev stay while another session still has its work folder mounted in there.
    others = [line for line in _run(["findmnt", "-rn", "-o", "TARGET"]).stdout.splitlines()
              if line.startswith(f"{path}/tmp/stylefill-gimp-")]
    if not others:
        _run(["bash", str(ROOTFS_SH), "umount"])


@pytest.fixture(scope="session")
def workdir() -> Path:
    """The session's host folder: engine token, GIMP profile, photos, logs."""
    path = Path(tempfile.mkdtemp(prefix="stylefill-gimp-", dir="/tmp"))
    (path / "photos").mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def shared(rootfs: Path, workdir: Path) -> Path:
    """The work folder seen at the same path inside the rootfs (bind mount)."""
    inside = Path(f"{rootfs}{workdir}")
    inside.mkdir(parents=True, exist_ok=True)
    res = _run(["mount", "--bind", str(workdir), str(inside)])
    if res.returncode != 0:
        pytest.fail(f"bind-mounting {workdir} into the rootfs failed: {res.stderr}")
    yield workdir
    _run(["umount", "-l", str(inside)])
    try:
        inside.rmdir()  # only once unmounted and empty
    except OSError:
        pass


@pytest.fixture(scope="session")
def photos(workdir: Path) -> Path:
    """Real photos from scikit-image, as PNG files GIMP loads."""
    import skimage.data
    from PIL import Image

    for name in ("chelsea", "astronaut", "coffee"):
        Image.fromarray(getattr(skimage.data, name)()).save(workdir / "photos" / f"{name}.png")
    return workdir / "photos"


@pytest.fixture(scope="session")
def engine(workdir: Path) -> Engine:
    eng = start_engine(workdir, models=isolated_models(workdir / "models"))
    yield eng
    stop_engine(eng)


@pytest.fixture(scope="session")
def installed(workdir: Path, engine: Engine) -> Path:
    """The plug-in installed by install/gimp_plugin.py (what install.sh runs) into the profile."""
    profile = workdir / "gimp-profile"
    env = dict(os.environ, STYLEFILL_CONFIG=str(engine.config_dir))
    res = _run([sys.executable, str(REPO / "install" / "gimp_plugin.py"), "install",
                "--gimp-dir", str(profile), "--venv", sys.prefix, "--url", engine.url], env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    return profile


@pytest.fixture(scope="session")
def gimp(rootfs: Path, shared: Path, installed: Path, photos: Path) -> Gimp:
    return Gimp(rootfs, shared, installed, photos)




@pytest.fixture
def counted(engine: Engine, installed: Path, workdir: Path) -> tuple[CountingProxy, dict]:
    """A proxy that counts the plug-in's requests to the engine, and the environment for a
    GIMP run whose plug-in talks to the engine through it."""
    real = json.loads((installed / "plug-ins" / "stylefill" / "stylefill.json").read_text())
    proxy = CountingProxy(engine.url)
    config = workdir / "counted.json"
    config.write_text(json.dumps({"url": proxy.url, "token_file": real["token_file"]}))
    yield proxy, {"STYLEFILL_PLUGIN_CONFIG": str(config)}
    proxy.close()
