"""The plug-in in a real GIMP 3 (gimp-console-3.0, NONINTERACTIVE calls) against the real engine.

Fixtures (conftest.py): the cached Debian 13 rootfs, the plug-in installed by
install/gimp_plugin.py into an isolated profile, `stylefill serve` on the host's 127.0.0.1.
Jobs use few iterations: these tests check the plumbing GIMP <-> engine, not image quality.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from gimp_harness import dead_url, quick_styles

P = "plug-in-stylefill-"
NAMES = ["insert", "invert", "learn-styles", "modify", "suggest", "visualize"]
MENU = "<Image>/Filters/Stylefill"


def shown(cls: str, what: str) -> str:
    """A result layer's name as the plug-in writes it: short, for the Layers panel."""
    return f"{cls[:1].upper()}{cls[1:]} · {what}"


def ok(call: dict) -> None:
    assert call["status"] == "success", call.get("message")


def test_installed_and_registered(gimp, installed: Path):
    """install/gimp_plugin.py's layout is what GIMP 3 loads: all six procedures in the menu,
    with menu paths that carry the user's order (test_gimp_gui.py checks what GIMP shows)."""
    plugin = installed / "plug-ins" / "stylefill"
    assert os.access(plugin / "stylefill.py", os.X_OK)
    assert (plugin / "stylefill.json").stat().st_mode & 0o077 == 0  # may hold a token
    run = gimp.run("""
procs = sorted(PDB.query_procedures("plug-in-stylefill-.*", "", "", "", "", "", "", ""))
OUT["procs"] = procs
OUT["menus"] = {p: list(PDB.lookup_procedure(p).get_menu_paths()) for p in procs}
OUT["labels"] = {p: PDB.lookup_procedure(p).get_menu_label() for p in procs}
try:
    import numpy  # noqa: F401
    OUT["numpy"] = True
except ImportError:
    OUT["numpy"] = False
""")
    res = run.result
    assert res["procs"] == [P + n for n in NAMES]
    assert {p[len(P):]: m for p, m in res["menus"].items()} == {
        "suggest": [MENU + "//[1]"], "insert": [MENU + "//[2]"], "modify": [MENU + "//[3]"],
        "learn-styles": [MENU + "//[4]"], "visualize": [MENU + "/_Research/[1]"],
        "invert": [MENU + "/_Research/[2]"]}
    assert res["labels"][P + "insert"] == "_Insert object..."
    assert res["labels"][P + "invert"] == "_Feature inversion..."
    assert res["numpy"] is False, "the rootfs must prove the plug-in runs without numpy"
    assert b"plug-ins/stylefill/stylefill.py" in (installed / "pluginrc").read_bytes()


def test_arguments_are_choices_where_the_engine_decides(gimp):
    """The PDB arguments made from the plug-in's table: "automatic" is a choice (Auto, None,
    Everywhere), never a magic number, and a number of one's own is a "custom" choice plus
    that number."""
    run = gimp.run("""
for proc in PDB.query_procedures("plug-in-stylefill-.*", "", "", "", "", "", "", ""):
    OUT[proc] = arguments(proc)
""")
    table = {name[len(P):]: args for name, args in run.result.items()}
    styles = [str(i) for i in range(16)]
    insert = table["insert"]
    assert list(insert) == ["class-name", "style", "object", "drawing", "focus", "backbone",
                            "seed", "iterations", "custom-iterations", "time-limit",
                            "custom-time-limit"]
    assert insert["class-name"]["type"] == "gchararray"   # a name or index; empty: suggested
    assert not insert["class-name"]["default"]
    assert insert["style"] == {"type": "choice", "default": "auto", "choices": ["auto", *styles]}
    assert insert["object"] == {"type": "choice", "default": "fill", "choices": ["fill", "keep-photo"]}
    assert insert["drawing"] == {"type": "choice", "default": "whole-first",
                                 "choices": ["whole-first", "noise", "in-photo", "outline"]}
    assert insert["focus"] == {"type": "choice", "default": "photo", "choices": ["photo", "drawn"]}
    assert insert["backbone"] == {"type": "choice", "default": "auto", "choices": [
        "auto", "efficientnet-lite0", "alexnet", "vgg16"]}
    assert insert["iterations"] == {"type": "choice", "default": "auto",
                                    "choices": ["auto", "custom"]}
    assert insert["time-limit"] == {"type": "choice", "default": "none",
                                    "choices": ["none", "custom"]}
    assert table["modify"]["style"] == insert["style"]  # Auto: the style the object shows least of
    vis = table["visualize"]
    assert vis["cells"]["default"] == "everywhere"
    assert {"top-left", "centre", "bottom-right"} <= set(vis["cells"]["choices"])
    assert vis["dropout"]["choices"] == ["none", "custom"] and vis["dropout-seed"]["default"] == 0
    assert vis["size"]["choices"] == ["auto", "160", "224", "320", "448"]
    assert vis["output"]["choices"] == ["layer", "image"]
    assert table["invert"]["prior"] == {"type": "choice", "default": "patch",
                                        "choices": ["patch", "tv"]}
    assert table["invert"]["depth"] == {"type": "choice", "default": "auto", "choices": [
        "auto", "block4", "block10", "block15", "pool5"]}
    learn = table["learn-styles"]
    assert learn["topics"]["choices"] == learn["samples"]["choices"] == ["auto", "custom"]
    assert "iterations" not in learn
    assert table["suggest"]["backbone"] == insert["backbone"]
    for proc, args in table.items():   # any other number sits beside its "custom" choice
        names = list(args)
        for i, name in enumerate(names):
            if args[name]["type"] in ("gint", "gdouble") and name not in ("seed", "top"):
                assert "custom" in args[names[i - 1]].get("choices", []), (proc, name)


def test_suggest_returns_classes(gimp):
    run = gimp.run("""
image, layer = load("chelsea")
image.select_rectangle(Gimp.ChannelOps.REPLACE, 150, 60, 140, 140)
r = call("plug-in-stylefill-suggest", image, [layer], top=5)
OUT["call"] = {k: v for k, v in r.items() if k != "values"}
if r["status"] == "success":
    OUT["classes"] = list(r["values"][0])
    OUT["suggestions"] = json.loads(r["values"][1])
OUT["layers"] = names(image)
image.delete()
""")
    res = run.result
    ok(res["call"])
    assert 1 <= len(res["classes"]) <= 5
    probs = [s["prob"] for s in res["suggestions"]]
    assert [s["class"] for s in res["suggestions"]] == res["classes"]
    assert all(0.0 <= p <= 1.0 for p in probs) and probs == sorted(probs, reverse=True)
    assert res["layers"] == ["Background"]  # suggest only reads


def test_insert_adds_one_layer_at_the_selection(gimp):
    """A new layer exactly over the selection's bounding box, with new content; the photo's own
    layer keeps every pixel."""
    run = gimp.run("""
image, layer = load("chelsea")
before = digest(layer)
image.select_ellipse(Gimp.ChannelOps.REPLACE, 40, 150, 130, 110)
_ok, _ne, x1, y1, x2, y2 = Gimp.Selection.bounds(image)
OUT["bounds"] = [x1, y1, x2, y2]
r = call("plug-in-stylefill-insert", image, [layer], class_name="ladybug", iterations="custom",
         custom_iterations=20, seed=1)
OUT["call"] = {k: v for k, v in r.items() if k != "values"}
if r["status"] == "success":
    new = r["values"][0]
    OUT["new"] = layer_info(new, layer)
    OUT["new_on_top"] = image.get_layers()[0].get_id() == new.get_id()
OUT["layers"] = names(image)
OUT["original_unchanged"] = digest(layer) == before
OUT["original_geometry"] = [layer.get_offsets()[1:], layer.get_width(), layer.get_height()]
image.delete()
""")
    res = run.result
    ok(res["call"])
    x1, y1, x2, y2 = res["bounds"]
    new = res["new"]
    assert new["offset"] == [x1, y1] and new["size"] == [x2 - x1, y2 - y1]
    assert res["new_on_top"] and len(res["layers"]) == 2 and res["layers"][1] == "Background"
    assert new["name"] == "Ladybug · auto style"
    assert new["coverage"] > 0.3, new          # the ellipse, not an empty layer
    assert new["std"] > 8, new                 # structure, not a flat fill
    assert new["diff_to_original"] > 5, new    # not a copy of the photo
    assert res["original_unchanged"]
    assert res["original_geometry"] == [[0, 0], 451, 300]


INSERT = """
image, layer = load("chelsea")
image.select_ellipse(Gimp.ChannelOps.REPLACE, 40, 150, 130, 110)
r = call("plug-in-stylefill-insert", image, [layer], {args})
OUT["call"] = {{k: v for k, v in r.items() if k != "values"}}
OUT["layers"] = names(image)
image.delete()
"""


def test_one_insert_checks_health_once_and_suggests_at_most_once(gimp, counted):
    """One run, one engine session: one health check. The class left empty costs one suggest
    call (its best class is used), a class given costs none; automatic arguments are left out
    of the job's params."""
    proxy, env = counted
    run = gimp.run(INSERT.format(args='class_name="", iterations="custom", custom_iterations=5'),
                   env=env)
    ok(run.result["call"])
    assert proxy.count("GET /v1/health") == 1
    assert proxy.count("POST /v1/suggest") == 1
    assert [b for b in proxy.bodies if b["path"] == "/v1/suggest"] == [
        {"top": 1, "path": "/v1/suggest"}]
    best = proxy.answers[0]["suggestions"][0]["class"]
    (job,) = proxy.jobs()
    assert job["kind"] == "insert" and job["params"] == {"class": best, "seed": 0, "iters": 5}
    assert run.result["layers"][0] == shown(best, "auto style")

    proxy.reset()
    run = gimp.run(INSERT.format(args='class_name="ladybug", backbone="efficientnet-lite0", '
                                      'seed=3, iterations="custom", custom_iterations=5, '
                                      'time_limit="custom", custom_time_limit=600.0'), env=env)
    ok(run.result["call"])
    assert proxy.count("GET /v1/health") == 1
    assert proxy.count("POST /v1/suggest") == 0
    (job,) = proxy.jobs()
    assert job["params"] == {"class": "ladybug", "backbone": "efficientnet-lite0", "seed": 3,
                             "iters": 5}


def test_automatic_leaves_fields_out_and_choices_fill_them_in(gimp, counted, photos: Path):
    """What each procedure's arguments become in the engine request (the jobs that would take
    long are stopped by a 1 s time limit: the request is what counts here)."""
    proxy, env = counted
    run = gimp.run(f"""
image, layer = load("astronaut")
image.select_rectangle(Gimp.ChannelOps.REPLACE, 300, 40, 160, 120)
quick = dict(time_limit="custom", custom_time_limit=1.0)
calls = [
    ("suggest", dict(top=3)),
    ("visualize", dict(class_name="ladybug", **quick)),
    ("visualize", dict(class_name="ladybug", cells="top-left", dropout="custom", dropout_seed=3,
                       size="160", seed=7, iterations="custom", custom_iterations=3)),
    ("modify", dict(style="2", **quick)),
    ("insert", dict(class_name="ladybug", object="keep-photo", drawing="in-photo", **quick)),
    ("insert", dict(class_name="ladybug", drawing="outline", focus="drawn", **quick)),
    ("insert", dict(class_name="ladybug", drawing="in-photo", iterations="custom",
                    custom_iterations=7, **quick)),
    ("insert", dict(class_name="ladybug", style="1", drawing="noise", **quick)),
    ("invert", dict(**quick)),
    ("learn-styles", dict(class_name="tabby", folder=Gio.File.new_for_path({str(photos)!r}),
                          topics="custom", custom_topics=2)),
]
OUT["status"] = [call("plug-in-stylefill-" + name, image, [layer], **args)["status"]
                 for name, args in calls]
image.delete()
""", env=env)
    res = run.result
    assert res["status"][:3] == ["success", "cancel", "success"], res
    assert proxy.count("GET /v1/health") == 10         # one per run
    suggest, *jobs = [{k: v for k, v in b.items() if k != "path"} for b in proxy.bodies]
    assert suggest == {"top": 3}
    assert jobs == [
        {"kind": "visualize", "params": {"class": "ladybug", "seed": 0}},
        {"kind": "visualize", "params": {"class": "ladybug", "cells": "top-left",
                                         "dropout_seed": 3, "size": 160, "seed": 7, "iters": 3}},
        {"kind": "modify", "params": {"style": 2, "seed": 0}},
        {"kind": "insert", "params": {"class": "ladybug", "keep_photo": 20.0, "render_first": 0,
                                      "iters": 100, "seed": 0}},
        {"kind": "insert", "params": {"class": "ladybug", "object_share": 0.6, "soften": 0.0,
                                      "seed": 0}},
        {"kind": "insert", "params": {"class": "ladybug", "render_first": 0, "iters": 7,
                                      "seed": 0}},
        {"kind": "insert", "params": {"class": "ladybug", "style": 1, "style_start": False,
                                      "seed": 0}},
        {"kind": "invert", "params": {"prior": "patch", "seed": 0}},
        {"kind": "learn_styles", "params": {"class": "tabby", "folder": str(photos),
                                            "data_free": False, "topics": 2, "seed": 0}},
    ]


@pytest.fixture(scope="module")
def espresso_styles(engine, photos: Path, tmp_path_factory):
    """One style of 'espresso' in the engine's models dir, learned here from four views of the
    coffee photo with a 4-step preview (seconds; data-free styles would take minutes)."""
    return quick_styles(engine, "espresso", photos / "coffee.png",
                        tmp_path_factory.mktemp("espresso"), topics=1)


def test_modify_adds_a_restyled_layer_at_the_selection(gimp, espresso_styles):
    """Modify restyles the cup in coffee: a new layer over the selection's bounding box named
    after class and style; the photo's own layer keeps every pixel."""
    run = gimp.run("""
image, layer = load("coffee")
before = digest(layer)
image.select_ellipse(Gimp.ChannelOps.REPLACE, 120, 40, 300, 220)
_ok, _ne, x1, y1, x2, y2 = Gimp.Selection.bounds(image)
OUT["bounds"] = [x1, y1, x2, y2]
r = call("plug-in-stylefill-modify", image, [layer], class_name="espresso", style="0",
         iterations="custom", custom_iterations=10)
OUT["call"] = {k: v for k, v in r.items() if k != "values"}
if r["status"] == "success":
    new = r["values"][0]
    OUT["new"] = layer_info(new, layer)
    OUT["new_on_top"] = image.get_layers()[0].get_id() == new.get_id()
OUT["layers"] = names(image)
OUT["original_unchanged"] = digest(layer) == before
image.delete()
""")
    res = run.result
    ok(res["call"])
    x1, y1, x2, y2 = res["bounds"]
    new = res["new"]
    assert new["offset"] == [x1, y1] and new["size"] == [x2 - x1, y2 - y1]
    assert new["name"] == "Espresso · style 0"
    assert res["new_on_top"] and res["layers"][1:] == ["Background"]
    assert new["coverage"] > 0.6, new       # the ellipse (pi/4 of its box), not an empty layer
    assert new["diff_to_original"] > 3, new  # restyled, not a copy of the photo
    assert res["original_unchanged"]


def test_insert_in_a_chosen_style(gimp, espresso_styles):
    """Insert with a learned style: the new layer is named after class and style and sits at the
    selection; the photo's own layer keeps every pixel."""
    run = gimp.run("""
image, layer = load("astronaut")
before = digest(layer)
image.select_rectangle(Gimp.ChannelOps.REPLACE, 300, 320, 120, 110)
r = call("plug-in-stylefill-insert", image, [layer], class_name="espresso", style="0",
         iterations="custom", custom_iterations=10)
OUT["call"] = {k: v for k, v in r.items() if k != "values"}
if r["status"] == "success":
    OUT["new"] = layer_info(r["values"][0], layer)
OUT["layers"] = names(image)
OUT["original_unchanged"] = digest(layer) == before
image.delete()
""")
    res = run.result
    ok(res["call"])
    new = res["new"]
    assert new["name"] == "Espresso · style 0"
    assert new["offset"] == [300, 320] and new["size"] == [120, 110]
    assert new["diff_to_original"] > 5, new
    assert res["layers"][1:] == ["Background"] and res["original_unchanged"]


def test_visualize_and_invert_place_layers(gimp):
    """Visualize lands on the selection; Invert without a selection covers the whole layer and
    with one sits at the selection with the selection as its mask."""
    run = gimp.run("""
image, layer = load("astronaut")
before = digest(layer)
image.select_rectangle(Gimp.ChannelOps.REPLACE, 300, 40, 160, 120)
r = call("plug-in-stylefill-visualize", image, [layer], class_name="ladybug",
         iterations="custom", custom_iterations=20)
OUT["vis"] = {k: v for k, v in r.items() if k != "values"}
if r["status"] == "success":
    OUT["vis_layer"] = layer_info(r["values"][0])
Gimp.Selection.none(image)
r = call("plug-in-stylefill-invert", image, [layer], prior="tv", depth="block10",
         iterations="custom", custom_iterations=10)
OUT["inv_all"] = {k: v for k, v in r.items() if k != "values"}
if r["status"] == "success":
    OUT["inv_all_layer"] = layer_info(r["values"][0])
image.select_ellipse(Gimp.ChannelOps.REPLACE, 100, 100, 200, 150)
r = call("plug-in-stylefill-invert", image, [layer], iterations="custom", custom_iterations=10)
OUT["inv_sel"] = {k: v for k, v in r.items() if k != "values"}
if r["status"] == "success":
    OUT["inv_sel_layer"] = layer_info(r["values"][0])
OUT["layers"] = names(image)
OUT["original_unchanged"] = digest(layer) == before
image.delete()
""")
    res = run.result
    for key in ("vis", "inv_all", "inv_sel"):
        ok(res[key])
    vis = res["vis_layer"]
    assert vis["offset"] == [300, 40] and vis["size"] == [160, 120]
    assert vis["name"] == "Ladybug · visualized" and vis["std"] > 5 and vis["has_mask"]
    inv = res["inv_all_layer"]
    assert inv["offset"] == [0, 0] and inv["size"] == [512, 512] and inv["coverage"] == 1.0
    assert inv["std"] > 5 and inv["name"] == "Inverted · TV prior"
    sel = res["inv_sel_layer"]
    assert sel["offset"] == [100, 100] and sel["size"] == [200, 150] and sel["has_mask"]
    assert len(res["layers"]) == 4 and res["layers"][-1] == "Background"
    assert res["original_unchanged"]


def test_engine_down_is_a_clear_error_and_gimp_keeps_running(gimp, installed: Path, workdir: Path):
    """Nothing listens and the engine cannot be started: an error status with a message that
    says what is wrong and what to do; no layer; GIMP and the plug-in work on afterwards."""
    real = json.loads((installed / "plug-ins" / "stylefill" / "stylefill.json").read_text())
    with dead_url() as dead:
        _engine_down(gimp, real, dead, workdir)


def _engine_down(gimp, real: dict, dead: str, workdir: Path) -> None:
    variants = {
        # the installed command (the host's venv) does not exist inside the rootfs
        "missing": dict(real, url=dead),
        "exits": dict(real, url=dead, engine_command=["/bin/sh", "-c", "echo broken >&2; exit 3"],
                      engine_log=str(workdir / "down-engine.log")),
        "none": {"url": dead, "token_file": real["token_file"]},
    }
    config = workdir / "down.json"
    run = gimp.run(f"""
variants = {json.dumps(dict(variants, real=real))}
image, layer = load("coffee")
before = digest(layer)
image.select_rectangle(Gimp.ChannelOps.REPLACE, 100, 100, 120, 90)
for name, cfg in variants.items():
    if name == "real":
        continue
    with open({str(config)!r}, "w") as f:
        json.dump(cfg, f)
    OUT[name] = call("plug-in-stylefill-insert", image, [layer], class_name="ladybug",
                     iterations="custom", custom_iterations=5)
    OUT[name + "_layers"] = names(image)
with open({str(config)!r}, "w") as f:   # the installed config again: the engine answers
    json.dump(variants["real"], f)
r = call("plug-in-stylefill-visualize", image, [layer], class_name="ladybug",
         iterations="custom", custom_iterations=3)
OUT["after"] = {{k: v for k, v in r.items() if k != "values"}}
OUT["original_unchanged"] = digest(layer) == before
OUT["gimp"] = Gimp.version()
image.delete()
""", env={"STYLEFILL_PLUGIN_CONFIG": str(config)})
    res = run.result
    assert run.rc == 0, run.output[-3000:]
    for name in variants:
        assert res[name]["status"] == "execution-error", res[name]
        assert res[name + "_layers"] == ["Background"]
        assert f"not answering at {dead}" in res[name]["message"] or \
            f"reach the Stylefill engine at {dead}" in res[name]["message"], res[name]
    assert "No such file or directory" in res["missing"]["message"]
    assert "exited with code 3" in res["exits"]["message"]
    assert "broken" in res["exits"]["message"]          # the engine log's last line
    assert "start it with" in res["none"]["message"]
    ok(res["after"])
    assert res["original_unchanged"] and res["gimp"].startswith("3.")


def test_missing_input_is_refused_before_the_engine_is_asked(gimp, counted):
    """No selection (Insert, Modify, Suggest, also run interactively: no dialog opens), no class
    (Visualize, Learn styles), no folder and no 'Without photos' (Learn styles): each is an
    error that says what to do, and not one request (not even a health check) reaches the
    engine; no layer appears."""
    proxy, env = counted
    run = gimp.run("""
image, layer = load("chelsea")
Gimp.Selection.none(image)
for proc in ("insert", "modify", "suggest"):
    OUT[proc] = call("plug-in-stylefill-" + proc, image, [layer], **(
        {"class_name": "ladybug"} if proc == "insert" else {}))
OUT["insert-dialog"] = call("plug-in-stylefill-insert", image, [layer],
                            run_mode=Gimp.RunMode.INTERACTIVE)
image.select_rectangle(Gimp.ChannelOps.REPLACE, 60, 60, 100, 100)
OUT["visualize"] = call("plug-in-stylefill-visualize", image, [layer], class_name="  ")
OUT["learn-class"] = call("plug-in-stylefill-learn-styles", None, [], data_free=True)
OUT["learn-folder"] = call("plug-in-stylefill-learn-styles", None, [], class_name="tabby")
OUT["layers"] = names(image)
image.delete()
""", env=env)
    res = run.result
    for proc in ("insert", "modify", "suggest", "insert-dialog"):
        assert res[proc]["status"] == "execution-error", res[proc]
        assert res[proc]["message"].startswith("Nothing is selected: select the area first")
    assert res["visualize"]["message"].startswith("Type the class to visualise")
    assert res["learn-class"]["message"] == "Type the class whose styles to learn"
    assert res["learn-folder"]["message"].startswith("Choose a folder of photos of the class")
    assert all(res[k]["status"] == "execution-error" for k in ("visualize", "learn-class",
                                                                 "learn-folder"))
    assert res["layers"] == ["Background"]
    assert sum(proxy.counts.values()) == 0, proxy.counts


def _job_state(engine, job_id: str, want: str, limit: float = 120.0) -> str:
    """The job's state once it is `want`, or whatever it is when `limit` (a guard) runs out."""
    client = engine.client()
    end = time.monotonic() + limit
    state = client.job(job_id)["state"]
    while state != want and time.monotonic() < end:
        time.sleep(0.2)
        state = client.job(job_id)["state"]
    return state


@pytest.mark.parametrize("proc", ["visualize", "insert"])
def test_time_limit_cancels_the_job_and_adds_no_layer(gimp, engine, proc):
    run = gimp.run(f"""
image, layer = load("chelsea")
image.select_rectangle(Gimp.ChannelOps.REPLACE, 60, 60, 100, 100)
OUT["call"] = call("plug-in-stylefill-{proc}", image, [layer], class_name="ladybug",
                   iterations="custom", custom_iterations=5000, time_limit="custom",
                   custom_time_limit=3.0)
OUT["layers"] = names(image)
image.delete()
""")
    res = run.result
    assert res["call"]["status"] == "cancel", res["call"]
    assert "cancelled after the time limit of 3 s" in run.output
    assert res["layers"] == ["Background"]
    (job_id,) = run.job_ids(proc)
    assert _job_state(engine, job_id, "cancelled") == "cancelled"   # stopped, not finished


def _plugin_pids(profile: Path) -> list[int]:
    """Processes running the plug-in of this test session's GIMP profile."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(c.endswith(b"stylefill/stylefill.py") for c in cmd) and \
                f"GIMP3_DIRECTORY={profile}".encode() in env:
            pids.append(int(entry.name))
    # a child caught between fork and exec still shows the plug-in's command line
    return [p for p in pids if _parent(p) not in pids]


def _parent(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return -1
    return int(stat.rsplit(")", 1)[1].split()[1])


def test_gimp_cancel_kills_the_plugin_and_the_job_is_cancelled(gimp, engine, installed: Path):
    """GIMP answers Cancel on a plug-in's progress by killing the plug-in (SIGKILL); the
    plug-in's watchdog must then cancel the engine job, and no layer may appear."""
    proc = gimp.popen("""
image, layer = load("chelsea")
image.select_rectangle(Gimp.ChannelOps.REPLACE, 60, 60, 100, 100)
OUT["call"] = call("plug-in-stylefill-visualize", image, [layer], class_name="ladybug",
                   iterations="custom", custom_iterations=5000)
OUT["layers"] = names(image)
OUT["gimp"] = Gimp.version()
image.delete()
""")
    output, job_id = [], None
    try:
        deadline = time.monotonic() + 120
        while job_id is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            output.append(line)
            if "stylefill: visualize job " in line:
                job_id = line.split("job ")[1].strip()
        assert job_id, "".join(output)[-3000:]
        assert _job_state(engine, job_id, "running", 60) == "running"
        pids = _plugin_pids(installed)
        assert len(pids) == 1, pids
        os.kill(pids[0], signal.SIGKILL)
        rest = proc.stdout.read()
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = "".join(output) + rest
    assert proc.returncode == 0, text[-3000:]
    result = json.loads(text.split("RESULT ", 1)[1].splitlines()[0])
    assert result["call"]["status"] != "success"
    assert result["layers"] == ["Background"]
    assert result["gimp"].startswith("3.")
    assert _job_state(engine, job_id, "cancelled") == "cancelled"



def test_learn_styles_reports_the_engines_answer(gimp, photos: Path):
    """Learn styles goes through the engine's job queue: its refusal of a folder that holds no
    photos of the class comes back as the procedure's error, the folder named relative to the
    one the engine allows, the work folder (no folder at all is caught before the engine is
    asked: test_missing_input_is_refused_before_the_engine_is_asked)."""
    run = gimp.run(f"""
folder = Gio.File.new_for_path({str(photos)!r})
OUT["folder"] = call("plug-in-stylefill-learn-styles", None, [], class_name="tabby",
                     folder=folder, topics="custom", custom_topics=2)
""")
    res = run.result
    assert res["folder"]["status"] == "execution-error", res["folder"]
    assert res["folder"]["message"].startswith("Stylefill: ")
    assert f"Stylefill: {photos.name}: only " in res["folder"]["message"]
    assert "image(s) look like 'tabby'" in res["folder"]["message"]
    assert str(photos) not in res["folder"]["message"]
    assert run.job_ids("learn_styles")


def test_context_crop_and_mask_are_what_the_engine_receives(gimp, installed: Path, photos: Path,
                                                            workdir: Path):
    """The plug-in's own encoder, run inside GIMP on a layer that is offset in its image: the
    image PNG is what is visible around the selection, the mask PNG the selection; a selection
    beside the layer works too (its context is clipped to the image, not to the layer), and
    reading leaves no image or layer behind."""
    plugin = installed / "plug-ins" / "stylefill"
    out = workdir / "sent"
    run = gimp.run(f"""
sys.path.insert(0, {str(plugin)!r})
import stylefill
photo, _ = load("chelsea")
image = Gimp.Image.new(600, 400, Gimp.ImageBaseType.RGB)
layer = Gimp.Layer.new_from_drawable(photo.get_layers()[0], image)
image.insert_layer(layer, None, 0)
layer.set_offsets(70, 40)
images = len(Gimp.get_images())
os.makedirs({str(out)!r}, exist_ok=True)
for tag, select in (("on", (200, 150, 90, 60)), ("beside", (530, 350, 60, 40))):
    if tag == "on":
        image.select_ellipse(Gimp.ChannelOps.REPLACE, *select)
    else:
        image.select_rectangle(Gimp.ChannelOps.REPLACE, *select)
    box, crop = stylefill.selected_region(image)
    for name, data in zip(("image", "mask"), stylefill.encode_region(image, crop)):
        with open(os.path.join({str(out)!r}, f"{{tag}}-{{name}}.png"), "wb") as f:
            f.write(data)
    OUT[tag] = {{"box": list(box), "crop": list(crop)}}
OUT["left_behind"] = [len(Gimp.get_images()) - images, len(image.get_layers())]
photo.delete()
image.delete()
""")
    import numpy as np
    from PIL import Image

    res = run.result
    assert res["left_behind"] == [0, 1]
    photo = np.asarray(Image.open(photos / "chelsea.png").convert("RGB"))
    on = res["on"]
    assert on["box"] == [200, 150, 90, 60]
    assert on["crop"] == [110, 90, 270, 180]   # one selection size of context on each side
    x, y, w, h = on["crop"]
    sent = Image.open(out / "on-image.png")
    assert sent.mode == "RGB" and sent.size == (w, h)
    assert np.array_equal(np.asarray(sent), photo[y - 40:y - 40 + h, x - 70:x - 70 + w])
    mask = np.asarray(Image.open(out / "on-mask.png"))
    assert mask.shape == (h, w)
    ys, xs = np.nonzero(mask)
    assert [xs.min() + x, ys.min() + y, xs.max() + 1 + x, ys.max() + 1 + y] == [200, 150, 290, 210]
    assert abs((mask > 127).sum() / (np.pi / 4 * 90 * 60) - 1) < 0.03  # an ellipse, not a box
    beside = res["beside"]
    assert beside["crop"] == [470, 310, 130, 90]   # cut at the image's edge (600 x 400)
    x, y, w, h = beside["crop"]
    seen = np.asarray(Image.open(out / "beside-image.png"))
    assert seen.shape == (h, w, 3)
    assert np.array_equal(seen[:340 - y, :521 - x], photo[y - 40:300, x - 70:451])  # the layer
    empty = seen[340 - y:, :].reshape(-1, 3)      # below the layer: the flattened background
    assert (empty == empty[0]).all()
    assert (np.asarray(Image.open(out / "beside-mask.png")) > 127).sum() == 60 * 40


# A first insert, a second on the first result, a third on the photo; then Suggest.
THREE_INSERTS = """
image, layer = load("chelsea")
quick = dict(class_name="ladybug", iterations="custom", custom_iterations=5)
image.select_ellipse(Gimp.ChannelOps.REPLACE, 40, 150, 130, 110)
first = call("plug-in-stylefill-insert", image, [layer], **quick)
OUT["first"] = {k: v for k, v in first.items() if k != "values"}
first = first["values"][0]
image.select_rectangle(Gimp.ChannelOps.REPLACE, 300, 20, 80, 60)
second = call("plug-in-stylefill-insert", image, [first], seed=2, **quick)
OUT["second"] = {k: v for k, v in second.items() if k != "values"}
second = second["values"][0]
image.select_rectangle(Gimp.ChannelOps.REPLACE, 200, 200, 60, 50)
third = call("plug-in-stylefill-insert", image, [layer], seed=3, **quick)
OUT["third"] = {k: v for k, v in third.items() if k != "values"}
third = third["values"][0]
OUT["stack"] = [l.get_id() for l in image.get_layers()]
OUT["ids"] = [third.get_id(), second.get_id(), first.get_id(), layer.get_id()]
OUT["visible"] = [l.get_visible() for l in image.get_layers()]
OUT["second_layer"] = layer_info(second)
OUT["first_layer"] = layer_info(first)
OUT["first_rgba"] = pixels(first).hex()
image.select_ellipse(Gimp.ChannelOps.REPLACE, 40, 150, 130, 110)
image.clean_all()
images = len(Gimp.get_images())
OUT["suggest"] = call("plug-in-stylefill-suggest", image, [third], top=3)["status"]
OUT["clean"] = [image.is_dirty(), len(Gimp.get_images()) - images, len(image.get_layers())]
image.delete()
"""


def test_later_inserts_land_on_top_and_read_the_photo(gimp, counted, photos: Path):
    """A second insert run on the first result (GIMP's active layer after an insert) must still
    send the visible photo around its selection (context clipped to the image, not to the small
    result layer); a third, run on the photo's layer, must not land under the earlier results:
    each lands at the top of the stack. Suggest over the first result sees it as it shows
    (composited over the photo) and leaves the image clean."""
    proxy, env = counted
    run = gimp.run(THREE_INSERTS, env=env)
    import io

    import numpy as np
    from PIL import Image

    res = run.result
    for key in ("first", "second", "third"):
        ok(res[key])
    assert res["stack"] == res["ids"] and all(res["visible"])   # third, second, first, photo
    assert res["second_layer"]["offset"] == [300, 20] and res["second_layer"]["size"] == [80, 60]
    assert res["second_layer"]["name"] == "Ladybug · auto style #1"   # GIMP numbers twins
    photo = np.asarray(Image.open(photos / "chelsea.png").convert("RGB"))
    first_job, second_job, _third_job = proxy.job_images()
    context = np.asarray(Image.open(io.BytesIO(second_job["image"])))
    # one selection size around (300, 20, 80, 60), cut at the image's edges: (220, 0, 231, 140)
    assert context.shape == (140, 231, 3)
    assert np.array_equal(context, photo[0:140, 220:451])
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(first_job["image"]))),
                          photo[40:300, 0:300])          # the first insert: the photo too
    assert res["suggest"] == "success" and res["clean"] == [False, 0, 4]
    seen = np.asarray(Image.open(io.BytesIO(proxy.images[-1]["image"])))
    assert seen.shape == (260, 300, 3)                   # as for the first insert
    first = res["first_layer"]
    (fx, fy), (fw, fh) = first["offset"], first["size"]
    rgba = np.frombuffer(bytes.fromhex(res["first_rgba"]), np.uint8).reshape(fh, fw, 4)
    under = seen[fy - 40:fy - 40 + fh, fx:fx + fw]
    opaque, clear = rgba[..., 3] == 255, rgba[..., 3] == 0
    assert opaque.sum() > 1000 and clear.sum() > 100
    assert np.array_equal(under[opaque], rgba[..., :3][opaque])     # the result, as it shows
    assert np.array_equal(under[clear], photo[fy:fy + fh, fx:fx + fw][clear])  # the photo
