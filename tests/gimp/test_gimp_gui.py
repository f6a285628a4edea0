"""The plug-in in GIMP 3's real GUI (gimp-3.0 under Xvfb): Edit > Undo (ctrl+z) removes a
result in one step, an interactive run shows the dialog, whose Cancel adds nothing, and whose
OK runs with the engine session the dialog opened (one health check, one suggest call).

Batch mode has no undo command, so this is the only way to see what a user's ctrl+z does.
Screenshots of each step land in out/gimp-tests/ for a human to look at.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from gimp_harness import REPO, GuiSession

SHOTS = REPO / "out" / "gimp-tests"


@pytest.fixture
def gui(gimp, installed: Path):
    gimprc = installed / "gimprc"
    if b"show-welcome-dialog" not in (gimprc.read_bytes() if gimprc.exists() else b""):
        with gimprc.open("a") as f:
            f.write("(show-welcome-dialog no)\n")  # a first start would cover the image window
    SHOTS.mkdir(parents=True, exist_ok=True)
    session = GuiSession(gimp)
    yield session
    session.close()


def _title_says(gui: GuiSession, window: str, text: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    title = ""
    while time.monotonic() < deadline:
        title = gui.xdotool("getwindowname", window)
        if text in title:
            return title
        time.sleep(0.2)
    return title


@pytest.mark.parametrize("proc", ["visualize", "insert"])
def test_ctrl_z_removes_the_result_in_one_step(gui, workdir: Path, proc: str):
    tag = f"undo-{proc}"
    gui.start(f"""
image, layer = load("chelsea")
display = Gimp.Display.new(image)
before = digest(layer)
image.select_ellipse(Gimp.ChannelOps.REPLACE, 100, 60, 120, 90)
r = call("plug-in-stylefill-{proc}", image, [layer], class_name="ladybug", iterations="custom",
         custom_iterations=10)
OUT["call"] = {{k: v for k, v in r.items() if k != "values"}}
OUT["after_call"] = names(image)
Gimp.displays_flush()
flag("{tag}-ready")
wait_flag("{tag}-undone")
OUT["after_undo"] = names(image)
OUT["selection"] = list(Gimp.Selection.bounds(image)[1:])
OUT["original_unchanged"] = digest(layer) == before
image.clean_all()
""")
    gui.wait_file(workdir / f"{tag}-ready")
    ready = json.loads((workdir / f"{tag}-ready").read_text())
    assert ready["call"]["status"] == "success", ready["call"]
    window = gui.window(r"2 layers\).* GIMP$")
    gui.screenshot(SHOTS / f"{proc}-result.png")
    gui.key(window, "ctrl+z")
    title = _title_says(gui, window, "1 layer)")
    gui.screenshot(SHOTS / f"{proc}-undone.png")
    (workdir / f"{tag}-undone").touch()
    run = gui.finish()
    res = run.result
    assert res["call"]["status"] == "success", res["call"]
    assert len(res["after_call"]) == 2 and "ladybug" in res["after_call"][0]
    assert "1 layer)" in title, title
    assert res["after_undo"] == ["Background"]                 # one ctrl+z: the whole result
    assert res["selection"] == [True, 100, 60, 220, 150]       # and nothing before it
    assert res["original_unchanged"]


def test_interactive_run_shows_the_dialog_and_cancel_adds_nothing(gui, workdir: Path):
    gui.start("""
image, layer = load("chelsea")
display = Gimp.Display.new(image)
image.select_ellipse(Gimp.ChannelOps.REPLACE, 100, 60, 120, 90)
OUT["call"] = call("plug-in-stylefill-insert", image, [layer], run_mode=Gimp.RunMode.INTERACTIVE)
OUT["layers"] = names(image)
image.clean_all()
""")
    dialog = gui.window(r"^Stylefill: insert object$")
    geometry = gui.xdotool("getwindowgeometry", dialog)
    time.sleep(1.0)  # let it draw the style frame and suggestions before the picture
    gui.screenshot(SHOTS / "insert-dialog.png")
    gui.key(dialog, "Escape")
    run = gui.finish()
    res = run.result
    assert "Geometry:" in geometry
    assert res["call"]["status"] == "cancel", res["call"]
    assert res["layers"] == ["Background"]
    assert "Traceback" not in run.output, run.output[-3000:]


def test_interactive_insert_reuses_the_dialogs_session_and_suggestions(gui, counted,
                                                                       installed: Path):
    """The dialog reaches the engine, shows suggestions and fills the empty class with the best
    one (no empty field that means "automatic"); OK runs the job on the same connection with
    it: one health check and one suggest call for the whole insert."""
    proxy, env = counted
    # An interactive run starts from the last values GIMP kept; this test's are the call's.
    settings = installed / "plug-in-settings"
    (settings / "GimpProcedureConfigRun-plug-in-stylefill-insert.last").unlink(missing_ok=True)
    gui.start("""
image, layer = load("chelsea")
display = Gimp.Display.new(image)
image.select_ellipse(Gimp.ChannelOps.REPLACE, 100, 60, 120, 90)
r = call("plug-in-stylefill-insert", image, [layer], run_mode=Gimp.RunMode.INTERACTIVE,
         class_name="", iterations="custom", custom_iterations=5)
OUT["call"] = {k: v for k, v in r.items() if k != "values"}
OUT["layers"] = names(image)
image.clean_all()
""", env=env)
    dialog = gui.window(r"^Stylefill: insert object$")
    gui.key(dialog, "Return")                      # OK
    run = gui.finish()
    res = run.result
    assert res["call"]["status"] == "success", res["call"]
    assert proxy.count("GET /v1/health") == 1
    assert proxy.count("POST /v1/suggest") == 1
    best = proxy.answers[0]["suggestions"][0]["class"]
    (job,) = proxy.jobs()
    assert job["params"] == {"class": best, "seed": 0, "iters": 5}
    assert res["layers"] == [f"Stylefill: {best}, automatic style", "Background"]
