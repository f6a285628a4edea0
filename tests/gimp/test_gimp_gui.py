"""The plug-in in GIMP 3's real GUI (gimp-3.0 under Xvfb): Edit > Undo (ctrl+z) removes a
result in one step, an interactive run shows the dialog, whose Cancel adds nothing, and whose
OK runs with the engine session the dialog opened (one health check, one suggest call).

Batch mode has no undo command, so this is the only way to see what a user's ctrl+z does.
Screenshots of each step land in out/gimp-tests/ for a human to look at.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.parse
from pathlib import Path

import pytest
from gimp_harness import REPO, GuiSession, _run, quick_styles

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
    assert len(res["after_call"]) == 2 and res["after_call"][0].startswith("Ladybug · ")
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
    assert res["layers"] == [f"{best[:1].upper()}{best[1:]} · auto style", "Background"]


def _click_until(gui: GuiSession, ui: Path, name: str, done, tries: int = 3,
                 wait: float = 5) -> dict:
    """Click the dialog's widget `name` until done(map) (a click that lands while GTK still
    lays the dialog out is lost); the map then."""
    for _ in range(tries):
        gui.click(gui.ui(ui, lambda m: name in m["widgets"])["widgets"][name])
        try:
            return gui.ui(ui, done, timeout=wait)
        except AssertionError:
            continue
    return gui.ui(ui, done, timeout=1)


def _click_away(gui: GuiSession, ui: Path, title: str, tries: int = 3) -> None:
    """Click the dialog's OK until the dialog is gone."""
    for _ in range(tries):
        gui.click(gui.ui(ui, lambda m: m["widgets"].get("ok", {}).get("sensitive"))
                  ["widgets"]["ok"])
        try:
            gui.gone(title, timeout=5)
            return
        except AssertionError:
            continue
    gui.gone(title, timeout=1)


def _fresh(workdir: Path, *flags: str) -> None:
    """No flag file left from an earlier test: the snippet would not wait for this one's."""
    for name in flags:
        (workdir / name).unlink(missing_ok=True)


def _ui_map(workdir: Path, name: str) -> Path:
    """Where the dialogs map their widgets (STYLEFILL_UI_MAP), with none left from before."""
    _fresh(workdir, f"{name}-ui.json")
    return workdir / f"{name}-ui.json"


def _forget_last_values(installed: Path, *procs: str) -> None:
    """An interactive run starts from the last values GIMP kept; these tests' are the call's."""
    settings = installed / "plug-in-settings"
    for proc in procs:
        (settings / f"GimpProcedureConfigRun-plug-in-stylefill-{proc}.last").unlink(missing_ok=True)


OPEN_IMAGE = """
image, layer = load("chelsea")
display = Gimp.Display.new(image)
image.select_ellipse(Gimp.ChannelOps.REPLACE, 100, 60, 120, 90)
Gimp.displays_flush()
flag("menu-open")
wait_flag("menu-done", timeout=600)
image.clean_all()
"""

# Filters > Stylefill from the top, as (position, position in the Research submenu or None),
# and the dialog each item opens.
MENU = [((0, None), "Stylefill: suggest objects"), ((1, None), "Stylefill: insert object"),
        ((2, None), "Stylefill: modify object"), ((3, None), "Stylefill: learn styles"),
        ((4, 0), "Stylefill: visualize class"), ((4, 1), "Stylefill: feature inversion")]


def _open_item(gui: GuiSession, window: str, position: int, inner: int | None,
               shot: Path | None = None) -> None:
    """Filters (alt+r), up to its last entry (Stylefill), into it, down to `position` (and
    into the submenu there, down to `inner`), then Return: what a keyboard user does."""
    gui.key(window, "alt+r")
    time.sleep(0.8)
    gui.keys("Up", "Right", *["Down"] * position)
    if inner is not None:
        gui.keys("Right", *["Down"] * inner, pause=0.6)
    if shot is not None:
        gui.screenshot(shot)
    gui.keys("Return")


@pytest.fixture(params=["C.UTF-8", "en_US.UTF-8"])
def menu_locale(request, gimp, workdir: Path) -> dict:
    """GIMP's locale for the menu test: GIMP orders a plug-in's items by collating their menu
    paths, and C (code points: "[" after the capitals) and glibc's en_US (punctuation ignored)
    collate differently. The rootfs has C only; en_US is compiled into the work folder from
    the host's glibc locale sources."""
    if request.param == "C.UTF-8":
        return {}
    sources = Path("/usr/share/i18n")
    if not (sources / "locales" / "en_US").is_file():
        pytest.skip("no glibc locale sources in /usr/share/i18n to build en_US.UTF-8 from")
    target = workdir / "locale"
    env = {"LANG": request.param, "LOCPATH": str(target)}
    if not (target / request.param / "LC_COLLATE").is_file():
        shutil.copytree(sources, workdir / "i18n", dirs_exist_ok=True)
        target.mkdir(exist_ok=True)
        built = _run(["chroot", str(gimp.rootfs), "env", f"I18NPATH={workdir / 'i18n'}",
                      "localedef", "-i", "en_US", "-f", "UTF-8", str(target / request.param)])
        assert (target / request.param / "LC_COLLATE").is_file(), built.stderr
    order = _run(["chroot", str(gimp.rootfs), "env", *[f"{k}={v}" for k, v in env.items()],
                  "python3", "-c", "import locale; locale.setlocale(locale.LC_ALL, ''); "
                  "print(sorted(['[1]', 'R'], key=locale.strxfrm))"])
    assert order.stdout.strip() == "['[1]', 'R']", order   # not C's order: the locale is in use
    return env


def test_the_stylefill_menu_follows_the_users_path(gui, workdir: Path, menu_locale: dict):
    """Filters > Stylefill as GIMP 3 draws it, walked with the keyboard: from the top Suggest,
    Insert, Modify, Learn styles, then the Research submenu with Visualize and Feature
    inversion; each position opens its own dialog, told apart by its title."""
    _fresh(workdir, "menu-open", "menu-done")
    gui.start(OPEN_IMAGE, env=menu_locale)
    gui.wait_file(workdir / "menu-open")
    window = gui.window(r"layer\).* GIMP$")
    gui.xdotool("windowmove", window, "0", "0")
    gui.xdotool("windowsize", "--sync", window, "1100", "720")
    time.sleep(1.0)
    seen = []
    for (position, inner), _title in MENU:
        shot = SHOTS / f"menu-{menu_locale.get('LANG', 'C')}.png" if inner == 0 else None
        _open_item(gui, window, position, inner, shot)
        dialog = gui.window(r"^Stylefill: ", timeout=60)
        seen.append(gui.xdotool("getwindowname", dialog))
        gui.dismiss(r"^Stylefill: ")
    (workdir / "menu-done").touch()
    run = gui.finish()
    assert seen == [title for _where, title in MENU]
    assert "Traceback" not in run.output, run.output[-3000:]


def test_insert_in_the_gui_click_a_suggestion_and_a_style(gui, counted, engine, photos: Path,
                                                          installed: Path, workdir: Path,
                                                          tmp_path: Path):
    """Select, open Insert, click the second suggestion and the second style (whose thumbnail
    shows), OK: a visible layer named after both lands on top. A second insert, run on that
    layer as GIMP leaves it active, lands above the first."""
    proxy, env = counted
    _forget_last_values(installed, "insert")
    _fresh(workdir, "gui-inserted", "gui-inserted-seen")
    ui = _ui_map(workdir, "insert")
    gui.start("""
image, layer = load("chelsea")
display = Gimp.Display.new(image)
image.select_ellipse(Gimp.ChannelOps.REPLACE, 40, 150, 130, 110)
r = call("plug-in-stylefill-insert", image, [layer], run_mode=Gimp.RunMode.INTERACTIVE,
         iterations="custom", custom_iterations=5)
OUT["call"] = {k: v for k, v in r.items() if k != "values"}
first = r["values"][0]
image.select_rectangle(Gimp.ChannelOps.REPLACE, 300, 20, 80, 60)
r = call("plug-in-stylefill-insert", image, [first], class_name="ladybug",
         iterations="custom", custom_iterations=5)
OUT["second"] = {k: v for k, v in r.items() if k != "values"}
OUT["layers"] = names(image)
OUT["visible"] = [l.get_visible() for l in image.get_layers()]
Gimp.displays_flush()
flag("gui-inserted")
wait_flag("gui-inserted-seen", timeout=600)
image.clean_all()
""", env=dict(env, STYLEFILL_UI_MAP=str(ui)))
    shown = gui.ui(ui, lambda m: sum(k.startswith("suggestion:") for k in m["widgets"]) >= 2)
    names = [k for k in shown["widgets"] if k.startswith("suggestion:")]
    best, other = names[0].split(":", 1)[1], names[1].split(":", 1)[1]
    assert shown["title"] == "Stylefill: insert object"
    assert shown["widgets"]["class-name"]["label"] == best    # filled in, never empty
    prefetched = {urllib.parse.unquote(k.split("/")[3]) for k in proxy.counts if k.endswith("/prefetch")}
    assert prefetched == {n.split(":", 1)[1] for n in names[:3]}  # styles for the top three
    quick_styles(engine, other, photos / "chelsea.png", tmp_path / "styles")
    _click_until(gui, ui, names[1], lambda m: m["widgets"]["class-name"]["label"] == other)
    gui.ui(ui, lambda m: m["widgets"].get("style:1", {}).get("image"))
    chosen = _click_until(gui, ui, "style:1", lambda m: m["widgets"]["style:1"]["active"])
    time.sleep(0.5)
    gui.screenshot(SHOTS / "insert-dialog-styles.png")
    assert chosen["widgets"]["class-name"]["label"] == other
    assert chosen["widgets"]["style:0"]["image"] and "style:auto" in chosen["widgets"]
    _click_away(gui, ui, r"^Stylefill: insert object$")
    gui.wait_file(workdir / "gui-inserted", timeout=300)
    gui.window(r"3 layers\).* GIMP$")
    gui.screenshot(SHOTS / "two-inserts.png")
    (workdir / "gui-inserted-seen").touch()
    res = gui.finish().result
    assert res["call"]["status"] == "success" and res["second"]["status"] == "success", res
    first_job, second_job = proxy.jobs()
    assert first_job["params"] == {"class": other, "style": 1, "seed": 0, "iters": 5}
    assert second_job["params"]["class"] == "ladybug"
    assert res["layers"] == ["Ladybug · auto style", f"{other[:1].upper()}{other[1:]} · style 1",
                             "Background"]
    assert all(res["visible"])


def test_insert_shows_its_preview_on_the_canvas_and_one_undo_removes_the_result(
        gui, counted, installed: Path, workdir: Path):
    """While an interactive insert runs, its preview lies over the selection as a temporary
    layer, redrawn as the engine's preview changes; the result replaces it, and one ctrl+z
    removes the result with no preview layer left behind."""
    proxy, env = counted
    _forget_last_values(installed, "insert")
    _fresh(workdir, "preview-ready", "preview-undone")
    ui = _ui_map(workdir, "insert")
    gui.start("""
image, layer = load("chelsea")
display = Gimp.Display.new(image)
before = digest(layer)
image.select_ellipse(Gimp.ChannelOps.REPLACE, 100, 60, 120, 90)
r = call("plug-in-stylefill-insert", image, [layer], run_mode=Gimp.RunMode.INTERACTIVE,
         class_name="ladybug", iterations="custom", custom_iterations=80)
OUT["call"] = {k: v for k, v in r.items() if k != "values"}
OUT["after_call"] = names(image)
Gimp.displays_flush()
flag("preview-ready")
wait_flag("preview-undone")
OUT["after_undo"] = names(image)
OUT["original_unchanged"] = digest(layer) == before
image.clean_all()
""", env=dict(env, STYLEFILL_UI_MAP=str(ui)))
    gui.ui(ui, lambda m: m["widgets"].get("class-name", {}).get("label") == "ladybug")
    _click_away(gui, ui, r"^Stylefill: insert object$")
    window = gui.window(r"layer.*\).* GIMP$")
    deadline = time.monotonic() + 300
    previews = 0
    while previews < 2 and time.monotonic() < deadline:
        previews = sum(n for k, n in proxy.counts.items() if k.endswith("/preview.png"))
        time.sleep(0.2)
    title = _title_says(gui, window, "2 layers)", timeout=10)   # the photo and the preview
    gui.screenshot(SHOTS / "insert-preview.png")
    gui.wait_file(workdir / "preview-ready", timeout=600)
    gui.screenshot(SHOTS / "insert-preview-result.png")
    gui.key(window, "ctrl+z")
    undone = _title_says(gui, window, "1 layer)")
    (workdir / "preview-undone").touch()
    run = gui.finish()
    res = run.result
    assert previews >= 2 and "2 layers)" in title, (previews, title)
    assert res["call"]["status"] == "success", res["call"]
    assert res["after_call"] == ["Ladybug · auto style", "Background"]   # no preview left
    assert "previews shown on the canvas" in run.output
    assert "1 layer)" in undone and res["after_undo"] == ["Background"]  # one ctrl+z: all of it
    assert res["original_unchanged"]


def test_suggest_answers_with_buttons_that_open_insert(gui, counted, installed: Path,
                                                       workdir: Path):
    """Suggest's answer is a dialog of class buttons; a click opens Insert with that class
    filled in and the same suggestions offered, without asking the engine again."""
    proxy, env = counted
    _forget_last_values(installed, "suggest", "insert")
    ui = _ui_map(workdir, "suggest")
    gui.start("""
image, layer = load("chelsea")
display = Gimp.Display.new(image)
image.select_ellipse(Gimp.ChannelOps.REPLACE, 100, 60, 120, 90)
r = call("plug-in-stylefill-suggest", image, [layer], run_mode=Gimp.RunMode.INTERACTIVE)
OUT["call"] = {k: v for k, v in r.items() if k != "values"}
OUT["layers"] = names(image)
image.clean_all()
""", env=dict(env, STYLEFILL_UI_MAP=str(ui)))
    answer = gui.ui(ui, lambda m: m["title"] == "Stylefill: suggest objects"
                    and any(k.startswith("suggestion:") for k in m["widgets"]))
    buttons = [k for k in answer["widgets"] if k.startswith("suggestion:")]
    assert len(buttons) == 5                                     # Suggest's "How many"
    pick = buttons[-1].split(":", 1)[1]                          # not the best one
    insert = _click_until(gui, ui, buttons[-1], lambda m: m["title"] == "Stylefill: insert "
                          "object" and "class-name" in m["widgets"], wait=15)
    time.sleep(0.5)
    gui.screenshot(SHOTS / "suggest-then-insert.png")
    assert insert["widgets"]["class-name"]["label"] == pick
    assert [k for k in insert["widgets"] if k.startswith("suggestion:")] == buttons
    gui.dismiss(r"^Stylefill: insert object$")
    res = gui.finish().result
    assert res["call"]["status"] == "success", res["call"]
    assert res["layers"] == ["Background"]
    assert proxy.count("POST /v1/suggest") == 1 and not proxy.jobs()


def test_ok_waits_for_what_is_missing(gui, counted, installed: Path, workdir: Path):
    """Visualize with no class: OK is insensitive and the dialog says what to type, Return does
    nothing and no job starts; once a class is typed, OK runs it. Learn styles with a class
    but neither a folder nor 'Without photos': OK insensitive, the dialog says so."""
    proxy, env = counted
    _forget_last_values(installed, "visualize", "learn-styles")
    ui = _ui_map(workdir, "missing")
    gui.start("""
image, layer = load("chelsea")
display = Gimp.Display.new(image)
r = call("plug-in-stylefill-visualize", image, [layer], run_mode=Gimp.RunMode.INTERACTIVE,
         class_name="", output="layer", iterations="custom", custom_iterations=3)
OUT["visualize"] = {k: v for k, v in r.items() if k != "values"}
r = call("plug-in-stylefill-learn-styles", None, [], run_mode=Gimp.RunMode.INTERACTIVE,
         class_name="tabby")
OUT["learn"] = {k: v for k, v in r.items() if k != "values"}
OUT["layers"] = names(image)
image.clean_all()
""", env=dict(env, STYLEFILL_UI_MAP=str(ui)))
    empty = gui.ui(ui, lambda m: m["title"] == "Stylefill: visualize class"
                   and "missing" in m["widgets"])
    assert not empty["widgets"]["ok"]["sensitive"]
    assert empty["widgets"]["missing"]["label"].startswith("<b>Type the class to visualise")
    gui.key(gui.window(r"^Stylefill: visualize class$"), "Return")
    time.sleep(1.5)
    assert gui.window(r"^Stylefill: visualize class$", timeout=5)   # still open
    assert not proxy.jobs()
    _click_until(gui, ui, "class-name", lambda m: m["widgets"]["class-name"]["focus"])
    gui.xdotool("type", "--delay", "50", "ladybug")
    gui.ui(ui, lambda m: m["widgets"]["ok"]["sensitive"] and "missing" not in m["widgets"])
    _click_away(gui, ui, r"^Stylefill: visualize class$")
    learn = gui.ui(ui, lambda m: m["title"] == "Stylefill: learn styles"
                   and "missing" in m["widgets"])
    time.sleep(0.5)
    gui.screenshot(SHOTS / "learn-styles-missing.png")
    assert not learn["widgets"]["ok"]["sensitive"]
    assert "Choose a folder of photos of the class" in learn["widgets"]["missing"]["label"]
    gui.dismiss(r"^Stylefill: learn styles$")
    res = gui.finish().result
    assert res["visualize"]["status"] == "success", res["visualize"]
    assert res["learn"]["status"] == "cancel"
    assert [job["params"]["class"] for job in proxy.jobs()] == ["ladybug"]
    assert res["layers"] == ["Ladybug · visualized", "Background"]


def test_modify_picks_its_style_from_thumbnails(gui, engine, photos: Path, installed: Path,
                                                workdir: Path, tmp_path: Path):
    """Modify's dialog fills the class with what the selection holds and shows that class's
    styles as thumbnails after Auto (the style the object shows least of), chosen by default,
    instead of a bare Style "0", in the engine's far-apart-first order, a near-duplicate
    marked "≈ style N" and a note when they all look alike."""
    _forget_last_values(installed, "modify")
    listing = quick_styles(engine, "espresso", photos / "coffee.png", tmp_path / "styles").listing()
    ui = _ui_map(workdir, "modify")
    gui.start("""
image, layer = load("coffee")
display = Gimp.Display.new(image)
image.select_ellipse(Gimp.ChannelOps.REPLACE, 120, 40, 300, 220)
OUT["call"] = call("plug-in-stylefill-modify", image, [layer], run_mode=Gimp.RunMode.INTERACTIVE)
image.clean_all()
""", env={"STYLEFILL_UI_MAP": str(ui)})
    shown = gui.ui(ui, lambda m: m["widgets"].get("style:1", {}).get("image"))["widgets"]
    time.sleep(0.5)
    gui.screenshot(SHOTS / "modify-dialog.png")
    assert shown["class-name"]["label"] == "espresso"       # the top-1 inside the selection
    assert shown["style:auto"]["active"] and shown["style:0"]["image"]
    assert not shown["style:0"]["active"] and "arg:style" not in shown and "arg:seed" in shown
    for s in listing["styles"]:
        label = shown[f"style:{s['id']}"]["label"]
        assert label.endswith(f"≈ style {s['looks_like']}") if s["looks_like"] is not None \
            else label == f"Style {s['id']}", (label, s)
    assert ("note:styles" in shown) == (listing["distinct"] == 1), (shown, listing)
    gui.dismiss(r"^Stylefill: modify object$")
    assert gui.finish().result["call"]["status"] == "cancel"
