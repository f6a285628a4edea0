"""Screenshots of the real GIMP 3 for the README: the window with a Stylefill result and the
Filters > Stylefill menu open down to its Research submenu, or (--dialog) the Insert dialog with
its suggestions and the thumbnails of the class's learned styles. Same set-up as the tests: the
cached Debian 13 rootfs, the plug-in installed by install/gimp_plugin.py, the real engine on
the host's 127.0.0.1 (with the styles learned in models/). Run as root:

    OMP_NUM_THREADS=1 .venv/bin/python tests/gimp/screenshot.py -o docs/images/gimp-menu.png \
        [--command insert --class ladybug --iterations 200]

The README's pictures: hay in the held-out grass field (tests/data/debian_files.py fetches it):

    OMP_NUM_THREADS=1 .venv/bin/python tests/gimp/screenshot.py -o docs/images/gimp-menu.png \
        --photo grass-field --class hay --selection 320,150,140,100
    OMP_NUM_THREADS=1 .venv/bin/python tests/gimp/screenshot.py --dialog \
        -o docs/images/gimp-insert-dialog.png --photo grass-field --class hay \
        --selection 320,150,140,100
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gimp_harness import (  # noqa: E402
    REPO,
    ROOTFS_SH,
    Gimp,
    GuiSession,
    start_engine,
    stop_engine,
)

BODY = """
image, layer = load({photo!r})
display = Gimp.Display.new(image)
image.select_ellipse(Gimp.ChannelOps.REPLACE, {sel})
r = call("plug-in-stylefill-{command}", image, [layer], class_name={cls!r}, seed={seed}{iters})
OUT["call"] = {{k: v for k, v in r.items() if k != "values"}}
Gimp.displays_flush()
flag("shot-ready")
wait_flag("shot-done", timeout=600)
image.clean_all()
"""

DIALOG = """
image, layer = load({photo!r})
display = Gimp.Display.new(image)
image.select_ellipse(Gimp.ChannelOps.REPLACE, {sel})
call("plug-in-stylefill-insert", image, [layer], run_mode=Gimp.RunMode.INTERACTIVE,
     class_name={cls!r}, style="1")
image.clean_all()
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-o", "--output", default=str(REPO / "out" / "gimp-stylefill.png"))
    parser.add_argument("--command", default="insert", choices=["insert", "visualize"])
    parser.add_argument("--class", dest="cls", default="ladybug")
    parser.add_argument("--photo", default="chelsea", help="a scikit-image photo name, or "
                        "grass-field (the held-out photo of tests/data/debian_files.py)")
    parser.add_argument("--photo-file", help="any photo file instead")
    parser.add_argument("--selection", default="40,150,130,110", help="ellipse x,y,w,h")
    parser.add_argument("--iterations", type=int, default=0,
                        help="solver iterations (default: the engine's, Auto in the dialog)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dialog", action="store_true",
                        help="the Insert dialog for --class (style 1 chosen) instead")
    return parser.parse_args()


def save_photo(args: argparse.Namespace, photos: Path) -> None:
    """The photo to open in GIMP, as photos/<name>.png (args.photo becomes its name)."""
    import skimage.data
    from PIL import Image

    photos.mkdir()
    if args.photo == "grass-field" and not args.photo_file:
        sys.path.insert(0, str(REPO / "tests" / "data"))
        from debian_files import fetch

        args.photo_file = str(fetch("scratch") / "Sports" / "playing-field.jpg")
    if args.photo_file:
        args.photo = Path(args.photo_file).stem
        Image.open(args.photo_file).convert("RGB").save(photos / f"{args.photo}.png")
    else:
        Image.fromarray(getattr(skimage.data, args.photo)()).save(photos / f"{args.photo}.png")


def shoot(session: GuiSession, work: Path, output: Path) -> None:
    """Wait for the result, fit the image, open Filters > Stylefill and take the screenshot."""
    session.wait_file(work / "shot-ready", timeout=900)
    window = session.window(r"layers\).* GIMP$")
    session.xdotool("windowmove", window, "0", "0")
    session.xdotool("windowsize", "--sync", window, "1100", "720")
    time.sleep(1.5)
    session.key(window, "shift+ctrl+j")  # View > Zoom > Fit image in window
    time.sleep(1.0)
    # Open Filters (mnemonic r); Up wraps to its last entry, the Stylefill submenu, and in
    # there to its last entry, the Research submenu.
    session.key(window, "alt+r")
    time.sleep(0.8)
    session.keys("Up", "Right", "Up", "Right", pause=0.6)
    time.sleep(1.0)
    output.parent.mkdir(parents=True, exist_ok=True)
    session.screenshot(output)
    (work / "shot-done").touch()
    session.keys("Escape", "Escape", "Escape", "Escape")


def shoot_dialog(session: GuiSession, ui: Path, output: Path) -> None:
    """Wait for the Insert dialog's suggestions and style thumbnails, then take the dialog."""
    from PIL import Image

    shown = session.ui(ui, lambda m: m["title"] == "Stylefill: insert object" and any(
        k.startswith("suggestion:") for k in m["widgets"]) and m["widgets"].get(
        "style:1", {}).get("active"), timeout=900)
    session.xdotool("mousemove", "0", "0")  # no tooltip over the dialog
    time.sleep(1.0)
    dialog = session.window(f"^{shown['title']}$")
    geometry = session.xdotool("getwindowgeometry", "--shell", dialog)
    g = dict(line.split("=") for line in geometry.splitlines())
    x, y, w, h = (int(g[k]) for k in ("X", "Y", "WIDTH", "HEIGHT"))
    output.parent.mkdir(parents=True, exist_ok=True)
    session.screenshot(output)
    Image.open(output).crop((x, y, x + w, y + h)).save(output)
    session.dismiss(f"^{shown['title']}$")


def run(session: GuiSession, args: argparse.Namespace, work: Path) -> None:
    sel = args.selection.replace(",", ", ")
    if args.dialog:
        ui = work / "ui.json"
        session.start(DIALOG.format(photo=args.photo, sel=sel, cls=args.cls),
                      env={"STYLEFILL_UI_MAP": str(ui)})
        shoot_dialog(session, ui, Path(args.output))
    else:
        session.start(BODY.format(photo=args.photo, sel=sel, command=args.command, cls=args.cls,
                                  seed=args.seed,
                                  iters=f', iterations="custom", custom_iterations={args.iterations}'
                                  if args.iterations else ""))
        shoot(session, work, Path(args.output))
    session.finish(timeout=120)


def main() -> int:
    args = parse_args()
    build = subprocess.run(["bash", str(ROOTFS_SH), "build"], capture_output=True, text=True)
    if build.returncode != 0:
        print(build.stderr, file=sys.stderr)
        return 1
    rootfs = Path(build.stdout.strip().splitlines()[-1])
    subprocess.run(["bash", str(ROOTFS_SH), "mount"], check=True)
    work = Path(tempfile.mkdtemp(prefix="stylefill-gimp-shot-", dir="/tmp"))
    inside = Path(f"{rootfs}{work}")
    inside.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "--bind", str(work), str(inside)], check=True)
    engine = session = None
    try:
        save_photo(args, work / "photos")
        engine = start_engine(work)
        profile = work / "gimp-profile"
        subprocess.run([sys.executable, str(REPO / "install" / "gimp_plugin.py"), "install",
                        "--gimp-dir", str(profile), "--venv", sys.prefix, "--url", engine.url],
                       check=True, env=dict(os.environ, STYLEFILL_CONFIG=str(engine.config_dir)),
                       stdout=subprocess.DEVNULL)
        profile.joinpath("gimprc").write_text("(show-welcome-dialog no)\n")
        # The Insert dialog with its thumbnails is taller than 720 px.
        size = "1100x1000" if args.dialog else "1100x720"
        session = GuiSession(Gimp(rootfs, work, profile, work / "photos"), size=size)
        run(session, args, work)
        print(args.output)
    finally:
        if session is not None:
            session.close()
        if engine is not None:
            stop_engine(engine)
        subprocess.run(["umount", "-l", str(inside)], check=False)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
