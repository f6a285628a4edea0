#!/usr/bin/env python3
"""Stylefill for GIMP 3: Filters > Stylefill sends the selection (with some context) to the
Stylefill engine and brings the result back as a new layer. The menu follows the user's path:
Suggest objects, Insert object, Modify object, Learn styles, then Research > Visualize class,
Feature inversion.

The plug-in is one table, PROCEDURES (at the end): each procedure's menu entry, arguments and
return values, and for each argument the engine request field it fills and what "automatic"
means. GIMP's procedures, the dialogs (dialogs.py) and the engine requests are all made from
it; the run_* functions hold what each procedure does with the image. HTTP, engine start and
job polling are in client.py. It runs in GIMP's own Python, so it uses the standard library
and gi only (no numpy).

Image transport: the context crop is what the user sees there (the visible layers composited
in a throw-away duplicate of the image, so earlier results count as far as they show and the
user's image is never touched); it and the selection mask are read as raw bytes with GEGL and
encoded by client.encode_png (stdlib zlib, no export settings involved); the engine's RGBA PNG
is loaded with GIMP's own PNG loader (Gimp.file_load_layer), which handles every PNG filter and
converts to the image's precision. Results go on top of the layer stack (or of the group of
the layer the user works on), named "<Class> · <what>".
"""

import base64
import hashlib
import json
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gi  # noqa: E402

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
import client as sf  # noqa: E402
from gi.repository import Gegl, Gimp, GLib, GObject  # noqa: E402

PREFIX = "plug-in-stylefill-"
MENU = "<Image>/Filters/Stylefill"
RESEARCH = "_Research"   # the submenu of Visualize and Feature inversion
MAX_SIDE = 8000          # the engine refuses larger images (docs/protocol.md)
CONTEXT = 1.0            # context margin on each side, in multiples of the selection's size
CONTEXT_SIDE = 4096      # context stops growing here: the network sees a few hundred px anyway
RW = GObject.ParamFlags.READWRITE


class UserError(Exception):
    """Something the user can fix in GIMP (no selection, a class to type)."""


NOTHING_SELECTED = ("Nothing is selected: select the area first "
                    "(for example with the rectangle or free select tool)")


# ------------------------------------------------------------------------------ geometry

def selection_box(image):
    """The selection's bounding box (x, y, w, h) in image coordinates, or None when empty."""
    _ok, non_empty, x1, y1, x2, y2 = Gimp.Selection.bounds(image)
    return (x1, y1, x2 - x1, y2 - y1) if non_empty else None


def image_box(image):
    return (0, 0, image.get_width(), image.get_height())


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


def read_visible(image, box):
    """What the user sees over `box` (image coordinates) as R'G'B' u8 bytes: the visible layers
    composited, earlier results included as far as they show. Read from a throw-away duplicate
    (no clipboard), so the user's image, its layers and its undo history stay untouched."""
    copy = image.duplicate()
    try:
        copy.undo_disable()
        copy.crop(box[2], box[3], box[0], box[1])
        if not any(layer.get_visible() for layer in copy.get_layers()):
            raise UserError("No layer is visible: show the photo's layer first")
        flat = copy.flatten()
        rect = Gegl.Rectangle.new(0, 0, box[2], box[3])
        return bytes(flat.get_buffer().get(rect, 1.0, "R'G'B' u8", Gegl.AbyssPolicy.CLAMP))
    finally:
        copy.delete()


def read_selection(image, box):
    """The selection mask over `box` as Y u8 bytes (0 = not selected)."""
    rect = Gegl.Rectangle.new(*box)
    return bytes(image.get_selection().get_buffer().get(rect, 1.0, "Y u8", Gegl.AbyssPolicy.NONE))


def selected_region(image):
    """(selection box, context box clipped to the image) or UserError when nothing is
    selected. The selection may lie anywhere on the image, over any layer."""
    box = selection_box(image)
    if box is None:
        raise UserError(NOTHING_SELECTED)
    if max(box[2], box[3]) > MAX_SIDE:
        raise UserError(f"The selection is larger than {MAX_SIDE} px; select a smaller area")
    return box, context_box(box, image_box(image))


def encode_region(image, crop):
    """(image PNG, mask PNG) of the crop: what insert, modify and suggest send."""
    w, h = crop[2], crop[3]
    return (sf.encode_png(w, h, read_visible(image, crop), 3),
            sf.encode_png(w, h, read_selection(image, crop), 1))


# -------------------------------------------------------------------------------- results

def _place(drawables):
    """(parent, 0): the top of the layer stack, or of the group of the layer the user works
    on, so a result always shows above the photo and above earlier results."""
    layer = next((d for d in drawables or [] if isinstance(d, Gimp.Layer)), None)
    return (layer.get_parent() if layer is not None else None), 0


def add_result_layer(image, drawables, result, origin, name, fit=None, mask_selection=False):
    """The engine's PNG as a new layer at origin + result offset, on top (see _place), in one
    undo group.

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
        parent, position = _place(drawables)
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


class CanvasPreview:
    """The running job's preview as a temporary layer over the selection, so the user sees the
    object take shape where it will land. The whole run is one undo group: the preview comes
    and goes inside it and the result is added inside it, so one undo removes the result (and
    if GIMP's Cancel kills the plug-in, GIMP closes the group and one undo removes the
    preview)."""

    NAME = "Stylefill preview"

    def __init__(self, image, drawables, box):
        self.image, self.drawables, self.box = image, drawables, box
        self.layer = None
        self.grouped = False
        self.shown = 0

    def show(self, png):
        layer = _load_layer(self.image, png)
        layer.set_name(self.NAME)
        if not self.grouped:
            self.image.undo_group_start()
            self.grouped = True
        self._remove()
        parent, position = _place(self.drawables)
        self.image.insert_layer(layer, parent, position)
        layer.scale(self.box[2], self.box[3], False)
        layer.set_offsets(self.box[0], self.box[1])
        self.layer = layer
        self.shown += 1
        Gimp.displays_flush()

    def _remove(self):
        if self.layer is not None:
            self.image.remove_layer(self.layer)
            self.layer = None

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        """After the result layer is added (or the job failed): the preview goes, the group
        ends."""
        self._remove()
        if self.grouped:
            self.image.undo_group_end()
        Gimp.displays_flush()
        if self.shown:
            print(f"stylefill: {self.shown} previews shown on the canvas", file=sys.stderr,
                  flush=True)


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


def layer_name(subject, detail):
    """'<Subject> · <detail>', short enough for the Layers panel: 'Ladybug · style 2',
    'Ladybug · auto style', 'Ladybug · visualized', 'Inverted · patch prior'."""
    subject = str(subject or "object")
    return f"{subject[:1].upper()}{subject[1:]} · {detail}"


def style_text(style):
    return "auto style" if style is None else f"style {style}"


# ---------------------------------------------------------------------- argument kinds
#
# An argument is a property of the procedure's config (what a script sets, what the dialog
# shows and GIMP remembers). `param` names the field of the engine request it fills, and
# value(config) is what it means there: None is "automatic", the field is left out of the
# request and the engine's default applies. No argument uses a magic number for "unset".

AUTO = ("auto", "Auto")
CUSTOM = "custom"


class Arg:
    def __init__(self, name, label, help, default=None, param=None):
        self.name, self.label, self.help = name, label, help
        self.default, self.param = default, param

    def value(self, config):
        return config.get_property(self.name)

    def missing(self, config, dialog=False):
        """What the user still has to give here, as a message; None when nothing."""
        return None


class Int(Arg):
    def __init__(self, name, label, help, lo, hi, default, param=None):
        super().__init__(name, label, help, default, param)
        self.lo, self.hi = lo, hi

    def add_to(self, procedure):
        procedure.add_int_argument(self.name, self.label, self.help, self.lo, self.hi,
                                   self.default, RW)


class Seconds(Int):
    def add_to(self, procedure):
        procedure.add_double_argument(self.name, self.label, self.help, self.lo, self.hi,
                                      self.default, RW)


class Flag(Arg):
    def add_to(self, procedure):
        procedure.add_boolean_argument(self.name, self.label, self.help, self.default, RW)


class Folder(Arg):
    """A folder; its path, or None when none is chosen."""

    def add_to(self, procedure):
        procedure.add_file_argument(self.name, self.label, self.help,
                                    Gimp.FileChooserAction.SELECT_FOLDER, True, None, RW)

    def value(self, config):
        folder = config.get_property(self.name)
        return folder.get_path() if folder is not None else None


class ClassName(Arg):
    """A class as a name, or as a number (an ImageNet index). Left empty in a script it is
    None (the help says what that means) or, with `required`, refused with that message; a
    dialog always asks for it (its suggestions fill it in), so no empty field means "auto"."""

    def __init__(self, help, required=None):
        super().__init__("class-name", "_Class", help, "", param="class")
        self.required = required

    def add_to(self, procedure):
        procedure.add_string_argument(self.name, self.label, self.help, self.default, RW)

    def value(self, config):
        text = (config.get_property(self.name) or "").strip()
        return int(text) if text.isdigit() else (text or None)

    def missing(self, config, dialog=False):
        if (config.get_property(self.name) or "").strip():
            return None
        return self.required or (TYPE_A_CLASS if dialog else None)


TYPE_A_CLASS = "Type a class (a name such as 'ladybug' or an ImageNet index) or click a suggestion"


class Choice(Arg):
    """One of `choices`, (nick, label) pairs: a Gimp.Choice. The nick `auto`, when given, is
    automatic (None); any other nick goes to the engine through `convert`."""

    def __init__(self, name, label, help, choices, default, param=None, auto=None, convert=str):
        super().__init__(name, label, help, default, param)
        self.choices, self.auto, self.convert = choices, auto, convert

    def add_to(self, procedure):
        choice = Gimp.Choice.new()
        for i, (nick, label) in enumerate(self.choices):
            choice.add(nick, i, label, "")
        procedure.add_choice_argument(self.name, self.label, self.help, choice, self.default, RW)

    def value(self, config):
        nick = config.get_property(self.name)
        return None if nick == self.auto else self.convert(nick)


class Custom(Choice):
    """Automatic (or none: `unset`) or a number of one's own: the choice `name` between `unset`
    and "custom", and the `number` argument, which the dialog makes editable only when
    "custom" is chosen."""

    def __init__(self, name, label, help, number, unset=AUTO, param=None):
        super().__init__(name, label, help, [unset, (CUSTOM, "Custom")], unset[0], param,
                         auto=unset[0])
        self.number = number

    def add_to(self, procedure):
        super().add_to(procedure)
        self.number.add_to(procedure)

    def value(self, config):
        return self.number.value(config) if config.get_property(self.name) == CUSTOM else None


class Return:
    """A return value: `kind` is layer, int, text or texts (a list of strings)."""

    TYPES = {"layer": Gimp.Layer, "int": GObject.TYPE_INT, "text": GObject.TYPE_STRING,
             "texts": GObject.TYPE_STRV}

    def __init__(self, kind, name, label, help):
        self.kind, self.name, self.label, self.help = kind, name, label, help

    def add_to(self, procedure):
        if self.kind == "layer":
            procedure.add_layer_return_value(self.name, self.label, self.help, False, RW)
        elif self.kind == "int":
            procedure.add_int_return_value(self.name, self.label, self.help, 0, 1 << 30, 0, RW)
        elif self.kind == "text":
            procedure.add_string_return_value(self.name, self.label, self.help, "", RW)
        else:
            procedure.add_string_array_return_value(self.name, self.label, self.help, RW)

    def wrap(self, value):
        return GObject.Value(self.TYPES[self.kind], value)


class Procedure:
    """One menu item: the PDB procedure, its dialog and its engine request (see PROCEDURES).

    image: it works on an image (else it also runs without one);
    selection: it needs a selection, refused at once (before any dialog or engine call) without;
    research: its menu item sits in the Research submenu (else with the main steps);
    extras: what its dialog shows beyond the arguments ("suggestions", "styles");
    dialog: whether an interactive run first shows the arguments (Suggest shows its answer);
    check(config): a rule across arguments, the message when it is not met.
    """

    def __init__(self, name, label, blurb, help, run, args, returns, image=True,
                 selection=False, research=False, extras=(), dialog=True, check=None):
        self.name, self.label, self.blurb, self.help = name, label, blurb, help
        self.run, self.args, self.returns = run, args, returns
        self.image, self.selection, self.research = image, selection, research
        self.extras, self.dialog, self.check = extras, dialog, check
        self.title = label.replace("_", "").rstrip(".")    # "Insert object"

    def missing(self, config, dialog=False):
        """The first input the user still has to give, as a message, or None. A dialog asks
        for more than a script (see ClassName)."""
        for arg in self.args:
            message = arg.missing(config, dialog)
            if message:
                return message
        return self.check(config) if self.check else None

    def arg(self, name):
        return next(arg for arg in self.args if arg.name == name)

    def params(self, config):
        """The engine request's fields: each argument with a `param` that is not automatic."""
        fields = {}
        for arg in self.args:
            value = arg.value(config) if arg.param else None
            if isinstance(value, dict):  # a choice that sets several fields (Drawing)
                fields.update(value)
            elif value is not None:
                fields[arg.param] = value
        return fields

    def return_values(self, procedure, values):
        ret = procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, None)
        for i, (spec, value) in enumerate(zip(self.returns, values, strict=True), start=1):
            ret.remove(i)
            ret.insert(i, spec.wrap(value))
        return ret


# ------------------------------------------------------------------------------- running

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


class Call:
    """One run of a procedure: what GIMP passed, the argument values, and one engine session
    (one health check) shared by the dialog and the job."""

    def __init__(self, spec, run_mode, image, drawables, config):
        self.spec, self.run_mode, self.config = spec, run_mode, config
        self.image, self.drawables = image, list(drawables or [])
        self.session = sf.Session()
        self.progress = None

    @property
    def interactive(self):
        return self.run_mode == Gimp.RunMode.INTERACTIVE

    def value(self, name):
        return self.spec.arg(name).value(self.config)

    def check(self):
        """Refuse at once what cannot work (no selection), before any dialog or engine call."""
        if self.spec.selection:
            selected_region(self.image)

    def region(self):
        """(context box, image PNG, mask PNG) of the selection, read from the visible image."""
        _box, crop = selected_region(self.image)
        return (crop, *encode_region(self.image, crop))

    def suggest(self, image_png, mask_png, top):
        """Classes for the selection: for Modify what it holds, else what fits around it."""
        look = "inside" if self.spec.name == "modify" else "around"
        return self.session.suggest(image_png, mask_png, top=top, backbone=self.value("backbone"),
                                    progress=self.progress, look=look)

    def job(self, kind, params, on_preview=None, **payload):
        return self.session.run_job(kind, params, self.progress, self.value("time-limit"),
                                    on_preview=on_preview, **payload)

    def end_progress(self):
        if self.progress is not None:
            self.progress.end()
            self.progress = None


def run_suggest(call):
    """The classes for the selection; interactively they are buttons, and a click opens Insert
    with that class (open_insert)."""
    region = call.region()
    call.progress(0.5, "asking the engine")
    found = call.suggest(region[1], region[2], call.value("top"))
    if call.interactive:
        import dialogs

        call.end_progress()
        chosen = dialogs.choose_class(call.spec, found)
        if chosen is not None:
            open_insert(call, chosen, found, region)
    return [str(s.get("class")) for s in found], json.dumps(found)


def _edit(call, kind, suggest_class):
    """The selection with its context to the engine, the result as a layer at the selection."""
    crop, image_png, mask_png = call.region()
    params = call.spec.params(call.config)
    if suggest_class and "class" not in params:
        found = call.suggest(image_png, mask_png, 1)   # the dialog's suggestions when it had some
        if not found:
            raise sf.EngineError("the engine has no suggestion for this selection; type a class")
        params["class"] = found[0].get("class")
    with CanvasPreview(call.image, call.drawables, selection_box(call.image)) as preview:
        result = call.job(kind, params, image_png=image_png, mask_png=mask_png,
                          on_preview=preview.show if call.interactive else None)
        metrics = result.get("metrics") or {}
        name = layer_name(metrics.get("class") or params.get("class"),
                          style_text(metrics.get("style", params.get("style"))))
        return (add_result_layer(call.image, call.drawables, result, crop[:2], name),)


def run_insert(call):
    return _edit(call, "insert", suggest_class=True)


def run_modify(call):
    return _edit(call, "modify", suggest_class=False)


def run_visualize(call):
    params = call.spec.params(call.config)
    as_image = call.value("output") == "image" or call.image is None
    result = call.job("visualize", params)
    style = (result.get("metrics") or {}).get("style", params.get("style"))
    name = layer_name(params["class"], "visualized" if style is None
                      else f"visualized, {style_text(style)}")
    if as_image:
        new = _load_image(_result_png(result))
        layer = new.get_layers()[0]
        layer.set_name(name)
        if call.interactive:
            Gimp.Display.new(new)
        return (layer,)
    target = selection_box(call.image) or image_box(call.image)
    return (add_result_layer(call.image, call.drawables, result, (0, 0), name, fit=target,
                             mask_selection=True),)


PRIORS = {"patch": "patch prior", "tv": "TV prior"}


def run_invert(call):
    """The selected area (or the whole image) as the user sees it, rebuilt from its features."""
    sel = selection_box(call.image)
    box = sel or image_box(call.image)
    if max(box[2], box[3]) > MAX_SIDE:
        raise UserError(f"The area is larger than {MAX_SIDE} px; select a smaller part")
    params = call.spec.params(call.config)
    image_png = sf.encode_png(box[2], box[3], read_visible(call.image, box), 3)
    result = call.job("invert", params, image_png=image_png)
    name = layer_name("inverted", PRIORS.get(params["prior"], params["prior"]))
    return (add_result_layer(call.image, call.drawables, result, box[:2], name,
                             mask_selection=sel is not None),)


def run_learn(call):
    params = call.spec.params(call.config)
    result = call.job("learn_styles", params)
    listing = result.get("metrics") or {}
    count = len(listing.get("styles") or [])
    if call.interactive:
        Gimp.message(f"Stylefill learned {count} styles of '{params['class']}'. Insert object... "
                     "and Visualize class... now offer them.")
    return count, json.dumps(listing)


def folder_or_without_photos(config):
    if config.get_property("folder") is None and not config.get_property("data-free"):
        return "Choose a folder of photos of the class, or tick 'Without photos'"
    return None


# ------------------------------------------------------------------- Suggest hands over to Insert
#
# Suggest's answer opens Insert through the PDB (as its menu item would, so GIMP keeps Insert's
# last values and Repeat works). GIMP runs it in a new process and fills its arguments from
# the last values, so the class clicked and the suggestions travel in a small file in GIMP's
# profile folder, read once by the Insert dialog: the engine is not asked again.

HANDOFF = "stylefill-suggestion.json"
HANDOFF_SECONDS = 600


def _handoff_path():
    return os.path.join(Gimp.directory(), HANDOFF)


def _region_key(region):
    return hashlib.sha256(region[1] + region[2]).hexdigest()


def open_insert(call, chosen, found, region):
    """Insert's dialog for the class clicked in Suggest's answer; its errors become Suggest's."""
    data = {"image": call.image.get_id(), "region": _region_key(region), "class": chosen,
            "backbone": call.value("backbone"), "suggestions": found, "time": time.time()}
    with open(_handoff_path(), "w", encoding="utf-8") as f:
        json.dump(data, f)
    procedure = Gimp.get_pdb().lookup_procedure(PREFIX + "insert")
    config = procedure.create_config()
    config.set_property("run-mode", Gimp.RunMode.INTERACTIVE)
    config.set_property("image", call.image)
    config.set_core_object_array("drawables", call.drawables)
    config.set_property("class-name", chosen)
    result = procedure.run(config)
    status = result.index(0)
    if status not in (Gimp.PDBStatusType.SUCCESS, Gimp.PDBStatusType.CANCEL):
        raise UserError(str(result.index(1)) if result.length() > 1 else "Insert failed")


def take_handoff(call, region):
    """What Suggest handed over for this image (read once): the class clicked, and its
    suggestions when they were for this selection and network; else None."""
    try:
        with open(_handoff_path(), encoding="utf-8") as f:
            data = json.load(f)
        os.unlink(_handoff_path())
    except (OSError, ValueError):
        return None
    if data.get("image") != call.image.get_id() or \
            time.time() - float(data.get("time", 0)) > HANDOFF_SECONDS:
        return None
    if data.get("region") != _region_key(region) or data.get("backbone") != call.value("backbone"):
        data["suggestions"] = None
    return data


# ------------------------------------------------------------------------------- the table
#
# Everything the plug-in offers, in menu order (the user's path: Suggest, Insert, Modify, Learn
# styles, then the Research submenu): each procedure with its arguments (in dialog order) and
# return values. Registration, menu paths, dialogs and engine requests are all made from this.

PREFETCH = 3       # the Insert dialog's top suggestions whose styles the engine prefetches
MAX_STYLES = 16    # style choices 0..15; Learn styles makes at most this many

BACKBONE = Choice(
    "backbone", "_Backbone", "The network. Auto: the engine's default (EfficientNet-Lite0)",
    [AUTO, ("efficientnet-lite0", "EfficientNet-Lite0"), ("alexnet", "AlexNet"),
     ("vgg16", "VGG16")], "auto", param="backbone", auto="auto")
SEED = Int("seed", "S_eed", "Random seed: the same seed gives the same result",
           0, 2**31 - 1, 0, param="seed")
ITERATIONS = Custom(
    "iterations", "_Iterations", "Solver iterations. Auto: the engine's default for the command",
    Int("custom-iterations", "Custo_m iterations", "Solver iterations when Iterations is Custom",
        1, 20000, 200), param="iters")
TIME_LIMIT = Custom(
    "time-limit", "_Time limit", "Cancel the engine's job when it takes longer. None: no limit",
    Seconds("custom-time-limit", "_Limit (s)", "The time limit in seconds when Time limit is "
            "Custom", 1.0, 86400.0, 600.0), unset=("none", "None"))
STYLES = [(str(i), f"Style {i}") for i in range(MAX_STYLES)]
STYLE = Choice(
    "style", "St_yle", "A learned style of the class (the dialog shows them). Auto: any style "
    "of the class", [AUTO, *STYLES], "auto", param="style", auto="auto", convert=int)
KEEP_PHOTO = 20.0  # insert's cost on changing the photo when the object keeps it (docs/tuning.md)
OBJECT = Choice(
    "object", "_Object", "How much of the selection the object takes. Fill: all of it. Keep the "
    "photo: what the object needs, the photo stays in the rest (an outline of its own, but the "
    "class is weaker)", [("fill", "Fill the selection"), ("keep-photo", "Keep the photo around it")],
    "fill", param="keep_photo", auto="fill", convert=lambda _: KEEP_PHOTO)
IN_PHOTO = {"render_first": 0, "iters": 100}  # grown out of the photo (the default before the 19th round)
OBJECT_SHARE = 0.6  # the share of the selection an outlined object covers (21st round)
DRAWINGS = {"in-photo": IN_PHOTO, "outline": {"object_share": OBJECT_SHARE},
            "noise": {"style_start": False}}
DRAWING = Choice(
    "drawing", "_Drawing", "How the object is drawn. Whole first: drawn alone on a canvas of the "
    "selection's size at the photo's spectrum, starting from the chosen style's own image so "
    "that each style gives an object of its own layout and colours, then placed and finished in "
    "the photo (the engine's default: better recognised on most test photos, not all). From "
    "grey noise: the same, but every style starts from the same grey (the styles' objects look "
    "much alike; the default before the twenty-fourth round). In the photo: grown out of the "
    "photo in the selection (the earlier default; up to a fifth faster on square selections). "
    "Cut to its outline: drawn whole first, then cut out of its canvas in the photo, keeping "
    "about 60 % of the selection, which is then cut to the object's shape (no rectangle of its "
    "own, but less surely the class, and about a fifth slower)",
    [("whole-first", "Whole first, then placed"), ("noise", "Whole first, from grey noise"),
     ("in-photo", "In the photo"), ("outline", "Whole first, cut to its outline")],
    "whole-first", param="render_first", auto="whole-first", convert=DRAWINGS.get)
FOCUS = Choice(
    "focus", "_Focus", "How sharp the object is. The photo's: a fill sharper than the photo "
    "around the selection is blurred to its focus, as an object at the depth of a blurred "
    "background would be (the engine's default). As drawn: kept as sharp as it was drawn, as "
    "an object in focus in front of that background",
    [("photo", "The photo's focus"), ("drawn", "As sharp as drawn")],
    "photo", param="soften", auto="photo", convert=lambda _: 0.0)
LAYER = Return("layer", "layer", "Layer", "The new layer holding the result")


def common(iterations=True):
    return [BACKBONE, SEED, *([ITERATIONS] if iterations else []), TIME_LIMIT]


PROCEDURES = [
    Procedure(
        "suggest", "_Suggest objects...",
        "Classes the network expects in the selection, from its context",
        "Sends the selection with its surroundings to the Stylefill engine and lists the "
        "ImageNet classes that fit there, with probabilities; interactively they are buttons, "
        "and a click opens Insert object with that class.",
        run_suggest,
        [Int("top", "_How many", "Number of classes", 1, 50, 5, param="top"), BACKBONE],
        [Return("texts", "classes", "Classes", "Best classes first"),
         Return("text", "suggestions", "Suggestions", "JSON list of {class, index, prob}")],
        selection=True, dialog=False),
    Procedure(
        "insert", "_Insert object...",
        "Fill the selection with an object of a class, in a learned style",
        "Synthesises an object of the chosen class (and style) into the selection; the result "
        "is a new layer at the selection, the photo's layers are not changed.",
        run_insert,
        [ClassName("Class name or ImageNet index; empty: the best suggestion for the selection"),
         STYLE, OBJECT, DRAWING, FOCUS, *common()],
        [LAYER], selection=True, extras=("suggestions", "styles")),
    Procedure(
        "modify", "_Modify object...", "Restyle the object inside the selection",
        "Re-renders what is selected in another learned style of its class; the result is a "
        "new layer at the selection.",
        run_modify,
        [Choice("style", "St_yle", "The learned style to render the object in (the dialog "
                "shows them). Auto: the style the object shows least of; while its class has no "
                "styles, the class alone (they are learned in the background for next time)",
                [AUTO, *STYLES], "auto", param="style", auto="auto", convert=int),
         ClassName("Class of the selected object; empty: what the network sees there"),
         *common()],
        [LAYER], selection=True, extras=("suggestions", "styles")),
    Procedure(
        "learn-styles", "_Learn styles...",
        "Learn the styles of a class from a folder of photos (or without photos)",
        "Finds the main styles of a class in a folder of your photos (a folder on the "
        "engine's machine), so Insert and Visualize can offer them.",
        run_learn,
        [ClassName("Class name or ImageNet index", required="Type the class whose styles to learn"),
         Folder("folder", "_Folder", "Photos of the class (on the engine's machine)",
                param="folder"),
         Flag("data-free", "_Without photos", "Learn from the network alone (no folder)", False,
              param="data_free"),
         Custom("topics", "_Styles", "How many styles to learn. Auto: the engine's default (4)",
                Int("custom-topics", "Custom style cou_nt", "How many styles when Styles is Custom",
                    1, MAX_STYLES, 4), param="topics"),
         Custom("samples", "S_amples",
                "Samples for data-free learning. Auto: the engine's default",
                Int("custom-samples", "Custom sam_ples", "Samples when Samples is Custom",
                    2, 10000, 12), param="samples"),
         *common(iterations=False)],
        [Return("int", "count", "Styles", "Number of styles learned"),
         Return("text", "listing", "Listing", "The styles as JSON")], image=False,
        check=folder_or_without_photos),
    Procedure(
        "visualize", "_Visualize class...",
        "What the network has learned about a class, as a new layer or image",
        "Maximises the class score (optionally one style, spatial cells, a dropout pathway) "
        "and adds the picture as a layer over the selection or as a new image.",
        run_visualize,
        [ClassName("Class name or ImageNet index",
                   required="Type the class to visualise (a name such as 'ladybug' or an index)"),
         STYLE,
         Choice("cells", "L_ocation", "Where in the picture the class may appear (the cells of "
                "the feature map that stay open). Everywhere: all cells",
                [("everywhere", "Everywhere"), ("top-left", "Top left"), ("top", "Top"),
                 ("top-right", "Top right"), ("left", "Left"), ("centre", "Centre"),
                 ("right", "Right"), ("bottom-left", "Bottom left"), ("bottom", "Bottom"),
                 ("bottom-right", "Bottom right")], "everywhere", param="cells",
                auto="everywhere"),
         Custom("dropout", "_Dropout", "One neural pathway: a member of the dropout ensemble, "
                "picked by its seed. None: the whole network",
                Int("dropout-seed", "Dropout _seed", "The pathway when Dropout is Custom",
                    0, 2**31 - 1, 0), unset=("none", "None"), param="dropout_seed"),
         Choice("size", "Si_ze", "Network input size in px. Auto: the backbone's own",
                [AUTO] + [(str(px), f"{px} px") for px in (160, 224, 320, 448)], "auto",
                param="size", auto="auto", convert=int),
         Choice("output", "O_utput", "Where the picture goes",
                [("layer", "New layer over the selection"), ("image", "New image")], "layer"),
         *common()],
        [LAYER], image=False, research=True, extras=("styles",)),
    Procedure(
        "invert", "_Feature inversion...",
        "Rebuild the selected area (or the image) from the network's features",
        "Feature inversion of the selected area (or the whole image) as it is seen, with or "
        "without the natural-patch prior; the reconstruction is a new layer.",
        run_invert,
        [Choice("prior", "_Prior", "Regulariser of the inversion",
                [("patch", "Natural-patch prior"), ("tv", "Total variation only")], "patch",
                param="prior"),
         Choice("depth", "_Depth", "Which layer's features are rebuilt (EfficientNet-Lite0's "
                "names; other networks: Automatic or pool5)",
                [AUTO, ("block4", "Shallow: block4, stride 8"),
                 ("block10", "Middle: block10, stride 16"), ("block15", "Deep: block15, stride 32"),
                 ("pool5", "Head: pool5 after the 1x1 convolution")], AUTO[0], param="layer",
                auto=AUTO[0]),
         *common()],
        [LAYER], research=True),
]


# ----------------------------------------------------------------------------- registration

def menu_path(spec):
    """Where GIMP 3.0 shows the item, in table order. GIMP adds a plug-in's items in the order
    of "menu path + label", collated in the user's locale, and a plug-in's own submenu has no
    sections, so the path carries the order: a last "[n]" is a section name that GIMP drops
    there (n = position in the table), and the doubled slash, which GIMP folds, keeps the main
    steps before the Research submenu also where "[" sorts after capitals (the C locale)."""
    same = [other for other in PROCEDURES if other.research == spec.research]
    position = f"[{same.index(spec) + 1}]"
    return f"{MENU}/{RESEARCH}/{position}" if spec.research else f"{MENU}//{position}"


def interactive(procedure, call):
    """The dialog; True when the user pressed OK. A dialog with extras reaches the engine
    first; the run then reuses that connection and the suggestions."""
    import dialogs  # GTK only when a person is there to see it

    suggestions = note = None
    if call.spec.extras:
        progress = Progress("connecting to the engine")
        try:
            region = call.region() if "suggestions" in call.spec.extras else None
            handed = (take_handoff(call, region) if region and call.spec.name == "insert"
                      else None) or {}
            if handed.get("class"):
                call.config.set_property("class-name", str(handed["class"]))
            call.session.connect(progress)
            if region is not None:
                progress(0.5, "classes for the selection")
                suggestions = _offer(call, region, handed.get("suggestions"))
        except (sf.EngineError, UserError) as exc:
            note = f"No suggestions: {exc}" if call.session.client is not None else str(exc)
        finally:
            progress.end()
    return dialogs.show(procedure, call.config, call.spec, call.session.client, suggestions,
                        note)


def _offer(call, region, handed=None):
    """The classes the dialog offers (those Suggest handed over, else the engine's); an empty
    class field gets the best one: a dialog shows the class the run will take."""
    found = handed or call.suggest(region[1], region[2], 6)
    if found and not (call.config.get_property("class-name") or "").strip():
        call.config.set_property("class-name", str(found[0].get("class")))
    wanted = PREFETCH if call.spec.name == "insert" else 1   # Modify: the object's own class
    _prefetch(call, [str(s.get("class")) for s in found[:wanted]])
    return found


def _prefetch(call, classes):
    """The engine learns the offered classes' styles in the background while the user chooses,
    so their thumbnails are there next time; an engine without it (older) is no reason to fail."""
    for cls in classes:
        try:
            call.session.client.prefetch_styles(cls, call.value("backbone"))
        except sf.EngineError as exc:
            print(f"stylefill: no style prefetch for {cls}: {exc}", file=sys.stderr, flush=True)
            return


def _error(procedure, status, message):
    return procedure.new_return_values(status, GLib.Error(message))


class Stylefill(Gimp.PlugIn):
    """Registers Filters > Stylefill > ... from PROCEDURES and runs them."""

    def do_query_procedures(self):
        return [PREFIX + spec.name for spec in PROCEDURES]

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        spec = next(spec for spec in PROCEDURES if PREFIX + spec.name == name)
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run, spec)
        procedure.set_image_types("RGB*, GRAY*" if spec.image else "*")
        # What the user sees is read, not one layer, so any number of selected layers will do.
        mask = Gimp.ProcedureSensitivityMask.DRAWABLE | Gimp.ProcedureSensitivityMask.DRAWABLES
        if not spec.image:
            mask |= (Gimp.ProcedureSensitivityMask.NO_DRAWABLES
                     | Gimp.ProcedureSensitivityMask.NO_IMAGE)
        procedure.set_sensitivity_mask(mask)
        procedure.set_menu_label(spec.label)
        procedure.add_menu_path(menu_path(spec))
        procedure.set_documentation(spec.blurb, spec.help, name)
        procedure.set_attribution("Stylefill", "Stylefill authors, Apache-2.0", "2025")
        for item in spec.args + spec.returns:
            item.add_to(procedure)
        return procedure

    def run(self, procedure, run_mode, image, drawables, config, spec):
        call = Call(spec, run_mode, image, drawables, config)
        try:
            call.check()
            if call.interactive and spec.dialog and not interactive(procedure, call):
                return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
            missing = spec.missing(config)
            if missing:
                raise UserError(missing)
            call.progress = Progress(spec.title)
            values = spec.run(call)
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
            call.end_progress()
        return spec.return_values(procedure, values)


if __name__ == "__main__":
    Gimp.main(Stylefill.__gtype__, sys.argv)
