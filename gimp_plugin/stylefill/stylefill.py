#!/usr/bin/env python3
"""Stylefill for GIMP 3: Filters > Stylefill sends the selection (with some context) to the
Stylefill engine and brings the result back as a new layer.

Only GIMP calls live here; HTTP, engine start and job polling are in client.py. It runs in GIMP's
own Python, so it uses the standard library and gi only (no numpy).

Image transport: the context crop and the selection mask are read as raw bytes with GEGL and
encoded by client.encode_png (stdlib zlib, no temporary GIMP image or export settings involved);
the engine's RGBA PNG is loaded with GIMP's own PNG loader (Gimp.file_load_layer), which
handles every PNG filter and converts to the image's precision.
"""

import base64
import json
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gi  # noqa: E402

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
import client as sf  # noqa: E402
from gi.repository import Gegl, Gimp, GLib, GObject  # noqa: E402

PREFIX = "plug-in-stylefill-"
MENU = "<Image>/Filters/Stylefill"
MAX_SIDE = 8000          # the engine refuses larger images (docs/protocol.md)
CONTEXT = 1.0            # context margin on each side, in multiples of the selection's size
CONTEXT_SIDE = 4096      # context stops growing here: the network sees a few hundred px anyway
RW = GObject.ParamFlags.READWRITE


class UserError(Exception):
    """Something the user can fix in GIMP (no selection, wrong layer)."""


# ------------------------------------------------------------------------------ geometry

def _intersect(a, b):
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    return (x1, y1, x2 - x1, y2 - y1) if x2 > x1 and y2 > y1 else None


def selection_box(image):
    """The selection's bounding box (x, y, w, h) in image coordinates, or None when empty."""
    _ok, non_empty, x1, y1, x2, y2 = Gimp.Selection.bounds(image)
    return (x1, y1, x2 - x1, y2 - y1) if non_empty else None


def layer_box(drawable):
    _ok, ox, oy = drawable.get_offsets()
    return (ox, oy, drawable.get_width(), drawable.get_height())


def context_box(box, bounds, margin=CONTEXT):
    """`box` grown by `margin` times its size on each side, inside `bounds`; the growth stops
    at CONTEXT_SIDE px in all (a selection that is larger already is sent as it is)."""
    x, y, w, h = box
    out = []
    for start, size, lo, extent in ((x, w, bounds[0], bounds[2]), (y, h, bounds[1], bounds[3])):
        grow = min(int(size * margin), max(0, (CONTEXT_SIDE - size) // 2))
        a, b = max(lo, start - grow), min(lo + extent, start + size + grow)
        out.append((a, b - a))
    return (out[0][0], out[1][0], out[0][1], out[1][1])


def read_rgb(drawable, box):
    """Pixels of `box` (image coordinates) of the drawable as R'G'B' u8 bytes."""
    ox, oy, _w, _h = layer_box(drawable)
    rect = Gegl.Rectangle.new(box[0] - ox, box[1] - oy, box[2], box[3])
    return bytes(drawable.get_buffer().get(rect, 1.0, "R'G'B' u8", Gegl.AbyssPolicy.CLAMP))


def read_selection(image, box):
    """The selection mask over `box` as Y u8 bytes (0 = not selected)."""
    rect = Gegl.Rectangle.new(*box)
    return bytes(image.get_selection().get_buffer().get(rect, 1.0, "Y u8", Gegl.AbyssPolicy.NONE))


def one_drawable(drawables):
    if len(drawables) != 1:
        raise UserError("Stylefill works on one layer at a time: select exactly one layer")
    return drawables[0]


def selected_region(image, drawable):
    """(selection box clipped to the layer, context box) or UserError when nothing is selected."""
    sel = selection_box(image)
    if sel is None:
        raise UserError("Nothing is selected: select the area first "
                        "(for example with the rectangle or free select tool)")
    box = _intersect(sel, layer_box(drawable))
    if box is None:
        raise UserError(f"The selection does not touch the layer '{drawable.get_name()}'")
    if max(box[2], box[3]) > MAX_SIDE:
        raise UserError(f"The selection is larger than {MAX_SIDE} px; select a smaller area")
    return box, context_box(box, layer_box(drawable))


def encode_region(image, drawable, crop):
    """(image PNG, mask PNG) of the crop: what insert, modify and suggest send."""
    w, h = crop[2], crop[3]
    return (sf.encode_png(w, h, read_rgb(drawable, crop), 3),
            sf.encode_png(w, h, read_selection(image, crop), 1))


# -------------------------------------------------------------------------------- results

def _place(image, drawable):
    """(parent, position) just above the drawable, so the new layer shows over it."""
    if isinstance(drawable, Gimp.Layer):
        return drawable.get_parent(), image.get_item_position(drawable)
    return None, 0


def add_result_layer(image, drawable, result, origin, name, fit=None, mask_selection=False):
    """The engine's PNG as a new layer at origin + result offset, in one undo group.

    fit=(x, y, w, h) scales and moves it onto that box instead (visualize as a layer).
    The original layers are never written to.
    """
    png = _result_png(result)
    offset = result.get("offset") or [0, 0]
    layer = _load_layer(image, png)
    inserted = False
    image.undo_group_start()
    try:
        layer.set_name(name)
        parent, position = _place(image, drawable)
        image.insert_layer(layer, parent, position)
        inserted = True
        if fit is not None:
            layer.scale(fit[2], fit[3], False)
            layer.set_offsets(fit[0], fit[1])
        else:
            layer.set_offsets(origin[0] + int(offset[0]), origin[1] + int(offset[1]))
        if mask_selection and selection_box(image) is not None:
            layer.add_mask(layer.create_mask(Gimp.AddMaskType.SELECTION))
    finally:
        image.undo_group_end()
        if not inserted:
            layer.delete()  # loaded but never placed: do not leave it floating around
    Gimp.displays_flush()
    return layer


def _result_png(result):
    try:
        png = base64.b64decode(result.get("png") or "", validate=True)
    except (ValueError, TypeError):
        raise sf.EngineError("the engine's result is not valid base64") from None
    w, h = sf.png_size(png)
    size = result.get("size")
    if size and [w, h] != [int(v) for v in size]:
        raise sf.EngineError(f"the engine's result is {w}x{h} but it says {size[0]}x{size[1]}")
    return png


def _load_layer(image, png):
    """Decode with GIMP's own PNG loader into a (not yet inserted) layer of `image`."""
    gfile = Gimp.temp_file("png")
    path = gfile.get_path()
    try:
        with open(path, "wb") as f:
            f.write(png)
        layer = Gimp.file_load_layer(Gimp.RunMode.NONINTERACTIVE, image, gfile)
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
    if layer is None:
        raise sf.EngineError("GIMP could not load the engine's result PNG")
    if not layer.has_alpha():
        layer.add_alpha()
    return layer


def _load_image(png):
    gfile = Gimp.temp_file("png")
    path = gfile.get_path()
    try:
        with open(path, "wb") as f:
            f.write(png)
        return Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, gfile)
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass


def layer_name(cls, style, metrics=None):
    """'Stylefill: <class>, style N' (the style the engine used when it reports one)."""
    metrics = metrics or {}
    cls = metrics.get("class") or cls or "object"
    style = metrics.get("style", style)
    tail = "automatic style" if style is None or style == -1 else f"style {style}"
    return f"Stylefill: {cls}, {tail}"


# -------------------------------------------------------------------------------- engine

class Progress:
    """GIMP's progress bar for one procedure; the callback client.py polls into."""

    def __init__(self, title):
        self.title = title
        Gimp.progress_init(f"Stylefill: {title}")

    def __call__(self, fraction, text):
        Gimp.progress_set_text(f"Stylefill: {self.title}: {text}" if text else self.title)
        Gimp.progress_update(max(0.0, min(1.0, float(fraction))))
        return True

    def end(self):
        Gimp.progress_end()


def connect(progress):
    """A client of a running engine (started first when local and down)."""
    engine = sf.Client(sf.Config.load())
    engine.ensure_running(progress)
    return engine


def run_job(engine, kind, params, progress, time_limit, **payload):
    """One engine job, with a watchdog that cancels it if GIMP kills this plug-in (Cancel)."""
    watchdog = []

    def created(job_id):
        watchdog.append(sf.start_watchdog(engine.config, job_id))
        print(f"stylefill: {kind} job {job_id}", file=sys.stderr, flush=True)

    try:
        return engine.run_job(kind, params, progress=progress, timeout=time_limit,
                              on_created=created, **payload)
    finally:
        if watchdog:
            sf.release_watchdog(watchdog[0])


def common_params(config):
    params = {"seed": int(config.get_property("seed"))}
    backbone = (config.get_property("backbone") or "").strip()
    if backbone:
        params["backbone"] = backbone
    iters = int(config.get_property("iterations"))
    if iters > 0:
        params["iters"] = iters
    return params


def class_param(text):
    """A class typed as a number is an ImageNet index; anything else is a name."""
    text = (text or "").strip()
    return int(text) if text.isdigit() else text


def _strv_value(items):
    return GObject.Value(GObject.TYPE_STRV, list(items))


# ------------------------------------------------------------------------------ procedures

def do_suggest(procedure, run_mode, image, drawables, config, progress):
    drawable = one_drawable(drawables)
    _box, crop = selected_region(image, drawable)
    engine = connect(progress)
    image_png, mask_png = encode_region(image, drawable, crop)
    progress(0.5, "asking the engine")
    backbone = (config.get_property("backbone") or "").strip() or None
    found = engine.suggest(image_png, mask_png, top=int(config.get_property("top")),
                           backbone=backbone)
    if run_mode == Gimp.RunMode.INTERACTIVE:
        lines = [f"{s.get('prob', 0) * 100:5.1f}%  {s.get('class')}" for s in found]
        Gimp.message("Stylefill suggests for the selection:\n" + "\n".join(lines)
                     + "\n\nUse Filters > Stylefill > Insert object... with one of these classes.")
    return [_strv_value([str(s.get("class")) for s in found]),
            GObject.Value(GObject.TYPE_STRING, json.dumps(found))]


def _edit(kind, image, drawables, config, progress, params, name_cls, style):
    drawable = one_drawable(drawables)
    _box, crop = selected_region(image, drawable)
    engine = connect(progress)
    image_png, mask_png = encode_region(image, drawable, crop)
    result = run_job(engine, kind, params, progress, config.get_property("time-limit"),
                     image_png=image_png, mask_png=mask_png)
    layer = add_result_layer(image, drawable, result, crop[:2],
                             layer_name(name_cls, style, result.get("metrics")))
    return [GObject.Value(Gimp.Layer, layer)]


def do_insert(procedure, run_mode, image, drawables, config, progress):
    cls = class_param(config.get_property("class-name"))
    style = int(config.get_property("style"))
    if cls == "":
        # No class given: the best suggestion for the selection's context.
        drawable = one_drawable(drawables)
        _box, crop = selected_region(image, drawable)
        engine = connect(progress)
        found = engine.suggest(*encode_region(image, drawable, crop), top=1)
        if not found:
            raise sf.EngineError("the engine has no suggestion for this selection; type a class")
        cls = found[0].get("class")
    params = dict(common_params(config), **{"class": cls, "style": None if style < 0 else style})
    return _edit("insert", image, drawables, config, progress, params, cls, style)


def do_modify(procedure, run_mode, image, drawables, config, progress):
    cls = class_param(config.get_property("class-name"))
    style = int(config.get_property("style"))
    params = dict(common_params(config), style=style)
    if cls != "":
        params["class"] = cls
    return _edit("modify", image, drawables, config, progress, params, cls or None, style)


def do_visualize(procedure, run_mode, image, drawables, config, progress):
    cls = class_param(config.get_property("class-name"))
    if cls == "":
        raise UserError("Type the class to visualise (a name such as 'ladybug' or an index)")
    params = dict(common_params(config), **{"class": cls})
    style = int(config.get_property("style"))
    if style >= 0:
        params["style"] = style
    cells = (config.get_property("cells") or "").strip()
    if cells:
        params["cells"] = cells
    dropout = int(config.get_property("dropout-seed"))
    if dropout >= 0:
        params["dropout_seed"] = dropout
    size = int(config.get_property("size"))
    if size > 0:
        params["size"] = size
    as_image = config.get_property("output") == "image" or image is None or not drawables
    engine = connect(progress)
    result = run_job(engine, "visualize", params, progress, config.get_property("time-limit"))
    name = layer_name(cls, style, result.get("metrics"))
    if as_image:
        new = _load_image(_result_png(result))
        layer = new.get_layers()[0]
        layer.set_name(name)
        if run_mode == Gimp.RunMode.INTERACTIVE:
            Gimp.Display.new(new)
        return [GObject.Value(Gimp.Layer, layer)]
    drawable = one_drawable(drawables)
    target = selection_box(image)
    target = _intersect(target, layer_box(drawable)) if target else layer_box(drawable)
    target = target or layer_box(drawable)
    layer = add_result_layer(image, drawable, result, (0, 0), name, fit=target,
                             mask_selection=True)
    return [GObject.Value(Gimp.Layer, layer)]


def do_invert(procedure, run_mode, image, drawables, config, progress):
    drawable = one_drawable(drawables)
    sel = selection_box(image)
    box = _intersect(sel, layer_box(drawable)) if sel else layer_box(drawable)
    if box is None:
        raise UserError(f"The selection does not touch the layer '{drawable.get_name()}'")
    if max(box[2], box[3]) > MAX_SIDE:
        raise UserError(f"The area is larger than {MAX_SIDE} px; select a smaller part")
    prior = config.get_property("prior")
    params = dict(common_params(config), prior=prior)
    engine = connect(progress)
    image_png = sf.encode_png(box[2], box[3], read_rgb(drawable, box), 3)
    result = run_job(engine, "invert", params, progress, config.get_property("time-limit"),
                     image_png=image_png)
    name = f"Stylefill: {drawable.get_name()} inverted ({prior} prior)"
    layer = add_result_layer(image, drawable, result, box[:2], name, mask_selection=sel is not None)
    return [GObject.Value(Gimp.Layer, layer)]


def do_learn(procedure, run_mode, image, drawables, config, progress):
    cls = class_param(config.get_property("class-name"))
    if cls == "":
        raise UserError("Type the class whose styles to learn")
    folder = config.get_property("folder")
    folder = folder.get_path() if folder is not None else None
    data_free = bool(config.get_property("data-free"))
    if not folder and not data_free:
        raise UserError("Choose a folder of photos of the class, or tick 'Without photos'")
    params = {"class": cls, "data_free": data_free, "seed": int(config.get_property("seed"))}
    backbone = (config.get_property("backbone") or "").strip()
    if backbone:
        params["backbone"] = backbone
    if folder:
        params["folder"] = folder
    for prop, key in (("topics", "topics"), ("samples", "samples")):
        if int(config.get_property(prop)) > 0:
            params[key] = int(config.get_property(prop))
    engine = connect(progress)
    result = run_job(engine, "learn_styles", params, progress, config.get_property("time-limit"))
    listing = (result.get("metrics") or {})
    styles = listing.get("styles", listing if isinstance(listing, list) else [])
    count = len(styles) if isinstance(styles, list) else 0
    if run_mode == Gimp.RunMode.INTERACTIVE:
        Gimp.message(f"Stylefill learned {count} styles of '{cls}'. Insert object... and "
                     "Visualize class... now offer them.")
    return [GObject.Value(GObject.TYPE_INT, count),
            GObject.Value(GObject.TYPE_STRING, json.dumps(listing))]


# ----------------------------------------------------------------------------- registration

def _common_args(procedure, iterations=True):
    procedure.add_string_argument("backbone", "Backbone",
                                  "Network; empty = the engine's default (efficientnet-lite0)",
                                  "", RW)
    procedure.add_int_argument("seed", "Seed", "Random seed", 0, 2**31 - 1, 0, RW)
    if iterations:
        procedure.add_int_argument("iterations", "Iterations",
                                   "Solver iterations; 0 = the engine's default", 0, 10000, 0, RW)
    procedure.add_double_argument("time-limit", "Time limit (s)",
                                  "Cancel the engine job after this many seconds; 0 = none",
                                  0.0, 86400.0, 0.0, RW)


def _class_arg(procedure, blurb):
    procedure.add_string_argument("class-name", "Class", blurb, "", RW)


def _style_arg(procedure, default=-1, lo=-1):
    procedure.add_int_argument("style", "Style",
                               "Learned style number; -1 = automatic / none", lo, 99, default, RW)


def _layer_return(procedure):
    procedure.add_layer_return_value("layer", "Layer", "The new layer holding the result",
                                     False, RW)


def _choice(*items):
    choice = Gimp.Choice.new()
    for i, (nick, label) in enumerate(items):
        choice.add(nick, i, label, "")
    return choice


PROCEDURES = {
    "suggest": dict(
        label="_Suggest objects for selection...", run=do_suggest, image=True,
        blurb="Classes the network expects in the selection, from its context",
        help="Sends the selection with its surroundings to the Stylefill engine and lists the "
             "ImageNet classes that fit there, with probabilities."),
    "insert": dict(
        label="_Insert object...", run=do_insert, image=True,
        blurb="Fill the selection with an object of a class, in a learned style",
        help="Synthesises an object of the chosen class (and style) into the selection; the "
             "result is a new layer at the selection, the photo's layers are not changed."),
    "modify": dict(
        label="_Modify object...", run=do_modify, image=True,
        blurb="Restyle the object inside the selection",
        help="Re-renders what is selected in another learned style of its class; the result is "
             "a new layer at the selection."),
    "visualize": dict(
        label="_Visualize class...", run=do_visualize, image=False,
        blurb="What the network has learned about a class, as a new layer or image",
        help="Maximises the class score (optionally one style, spatial cells, a dropout "
             "pathway) and adds the picture as a layer over the selection or as a new image."),
    "invert": dict(
        label="In_vert layer features...", run=do_invert, image=True,
        blurb="Rebuild the selection (or the layer) from the network's features",
        help="Feature inversion of the selected area (or the whole layer) with or without the "
             "natural-patch prior; the reconstruction is a new layer."),
    "learn-styles": dict(
        label="_Learn styles from folder...", run=do_learn, image=False,
        blurb="Learn the styles of a class from a folder of photos (or without photos)",
        help="Finds the main styles of a class in a folder of your photos (a folder on the "
             "engine's machine), so Insert and Visualize can offer them."),
}


def _add_arguments(name, procedure):
    if name == "suggest":
        procedure.add_int_argument("top", "How many", "Number of classes", 1, 50, 5, RW)
        procedure.add_string_argument("backbone", "Backbone",
                                      "Network; empty = the engine's default", "", RW)
        procedure.add_string_array_return_value("classes", "Classes", "Best classes first", RW)
        procedure.add_string_return_value("suggestions", "Suggestions",
                                          "JSON list of {class, index, prob}", "", RW)
    elif name == "insert":
        _class_arg(procedure, "Class name or ImageNet index; empty = the best suggestion")
        _style_arg(procedure)
        _common_args(procedure)
        _layer_return(procedure)
    elif name == "modify":
        _style_arg(procedure, default=0, lo=0)
        _class_arg(procedure, "Class of the selected object; empty = what the network sees there")
        _common_args(procedure)
        _layer_return(procedure)
    elif name == "visualize":
        _class_arg(procedure, "Class name or ImageNet index")
        _style_arg(procedure)
        procedure.add_string_argument("cells", "Location",
                                      "Cells of the feature map (r0:r1,c0:c1 or top-left, ...); "
                                      "empty = all", "", RW)
        procedure.add_int_argument("dropout-seed", "Dropout seed",
                                   "Neural pathway (dropout member); -1 = none", -1, 2**31 - 1, -1,
                                   RW)
        procedure.add_int_argument("size", "Size", "Network input size; 0 = default", 0, 1024, 0, RW)
        procedure.add_choice_argument("output", "Output", "Where the picture goes",
                                      _choice(("layer", "New layer over the selection"),
                                              ("image", "New image")), "layer", RW)
        _common_args(procedure)
        _layer_return(procedure)
    elif name == "invert":
        procedure.add_choice_argument("prior", "Prior", "Regulariser of the inversion",
                                      _choice(("patch", "Natural-patch prior"),
                                              ("tv", "Total variation only")), "patch", RW)
        _common_args(procedure)
        _layer_return(procedure)
    elif name == "learn-styles":
        _class_arg(procedure, "Class name or ImageNet index")
        procedure.add_file_argument("folder", "Folder", "Photos of the class (on the engine's "
                                    "machine)", Gimp.FileChooserAction.SELECT_FOLDER, True, None,
                                    RW)
        procedure.add_boolean_argument("data-free", "Without photos",
                                       "Learn from the network alone (no folder)", False, RW)
        procedure.add_int_argument("topics", "Styles", "How many styles; 0 = default", 0, 50, 0, RW)
        procedure.add_int_argument("samples", "Samples", "Samples for data-free learning; 0 = "
                                   "default", 0, 10000, 0, RW)
        _common_args(procedure, iterations=False)
        procedure.add_int_return_value("count", "Styles", "Number of styles learned", 0, 1000, 0,
                                       RW)
        procedure.add_string_return_value("listing", "Listing", "The styles as JSON", "", RW)


def interactive(procedure, config, short, image, drawables):
    """Show the dialog (after reaching the engine, for suggestions and style thumbnails)."""
    import dialogs  # GTK only when a person is there to see it

    engine = suggestions = note = None
    if short in ("insert", "modify", "visualize"):
        progress = Progress("connecting to the engine")
        try:
            engine = connect(progress)
            if short == "insert" and image is not None and len(drawables) == 1 \
                    and selection_box(image) is not None:
                progress(0.5, "suggestions for the selection")
                _box, crop = selected_region(image, drawables[0])
                suggestions = engine.suggest(*encode_region(image, drawables[0], crop), top=6)
        except (sf.EngineError, UserError) as exc:
            note = (f"No suggestions: {exc}" if engine is not None else str(exc))
        finally:
            progress.end()
    return dialogs.show(procedure, config, short, engine, suggestions, note)


def _error(procedure, status, message):
    return procedure.new_return_values(status, GLib.Error(message))


class Stylefill(Gimp.PlugIn):
    """Registers Filters > Stylefill > ... and runs them."""

    def do_query_procedures(self):
        return [PREFIX + name for name in PROCEDURES]

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        short = name[len(PREFIX):]
        spec = PROCEDURES[short]
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run, short)
        procedure.set_image_types("RGB*, GRAY*" if spec["image"] else "*")
        if spec["image"]:
            procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        else:
            procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE
                                           | Gimp.ProcedureSensitivityMask.NO_DRAWABLES
                                           | Gimp.ProcedureSensitivityMask.NO_IMAGE)
        procedure.set_menu_label(spec["label"])
        procedure.add_menu_path(MENU)
        procedure.set_documentation(spec["blurb"], spec["help"], name)
        procedure.set_attribution("Stylefill", "Stylefill authors, Apache-2.0", "2025")
        _add_arguments(short, procedure)
        return procedure

    def run(self, procedure, run_mode, image, drawables, config, short):
        spec = PROCEDURES[short]
        progress = None
        try:
            if run_mode == Gimp.RunMode.INTERACTIVE and not interactive(
                    procedure, config, short, image, drawables):
                return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
            progress = Progress(spec["label"].replace("_", "").rstrip("."))
            values = spec["run"](procedure, run_mode, image, drawables, config, progress)
        except UserError as exc:
            return _error(procedure, Gimp.PDBStatusType.EXECUTION_ERROR, str(exc))
        except sf.Cancelled as exc:
            print(f"stylefill: {exc}", file=sys.stderr, flush=True)
            return _error(procedure, Gimp.PDBStatusType.CANCEL, f"Stylefill: {exc}")
        except sf.EngineError as exc:
            return _error(procedure, Gimp.PDBStatusType.EXECUTION_ERROR, f"Stylefill: {exc}")
        except Exception as exc:  # a bug: say where, keep GIMP running
            traceback.print_exc()
            return _error(procedure, Gimp.PDBStatusType.EXECUTION_ERROR,
                          f"Stylefill plug-in error: {type(exc).__name__}: {exc}")
        finally:
            if progress is not None:
                progress.end()
        ret = procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, None)
        for i, value in enumerate(values, start=1):
            ret.remove(i)
            ret.insert(i, value)
        return ret


if __name__ == "__main__":
    Gimp.main(Stylefill.__gtype__, sys.argv)
