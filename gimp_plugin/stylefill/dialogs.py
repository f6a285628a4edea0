"""Interactive dialogs: a GimpUi.ProcedureDialog made from the procedure's entry in the table
(stylefill.PROCEDURES; GIMP keeps the last values), plus what a dialog of properties cannot
show: the engine's class suggestions for the selection, thumbnails of the learned styles of
the chosen class (which stand in for the Style choice), and what is still missing (OK stays
insensitive until it is given). Suggest's answer is a small dialog of its own: its classes
as buttons, one click opens Insert with that class.

Imported only for INTERACTIVE runs, so scripted and batch runs never need GTK or a display.
"""

import json
import os

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
gi.require_version("Gtk", "3.0")
gi.require_version("GdkPixbuf", "2.0")
import client as sf  # noqa: E402
from gi.repository import GdkPixbuf, Gimp, GimpUi, GLib, GObject, Gtk  # noqa: E402

THUMB = 96


def title(spec):
    return f"Stylefill: {spec.title[0].lower()}{spec.title[1:]}"   # "Stylefill: insert object"


def show(procedure, config, spec, engine=None, suggestions=None, note=None):
    """Run the dialog; True when the user pressed OK (the config then holds the choices).

    engine: a connected client.Client for the style thumbnails (None: no thumbnails, and the
    Style choice is shown as a list instead).
    suggestions: [{class, prob}] for the selection, offered as buttons that fill in the class.
    note: one line shown below the arguments (for example why there are no suggestions).
    """
    GimpUi.init("stylefill")
    dialog = GimpUi.ProcedureDialog.new(procedure, config, title(spec))
    thumbnails = engine is not None and "styles" in spec.extras
    shown = [arg for arg in spec.args if not (thumbnails and arg.name == "style")]
    dialog.fill([_item(dialog, arg) for arg in shown])
    extras = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=6)
    extras.set_border_width(6)
    if note:
        extras.pack_start(_label(note), False, False, 0)
    if suggestions:
        frame = Gtk.Frame(label="Classes for the selection (click to use)")
        frame.add(_class_buttons(suggestions,
                                 lambda cls: config.set_property("class-name", cls)))
        extras.pack_start(frame, False, False, 0)
    if thumbnails:
        picker = StylePicker(engine, config, spec.arg("style"), spec.arg("backbone"))
        extras.pack_start(picker.widget, True, True, 0)
    missing = _label("")
    missing.set_name("missing")
    extras.pack_start(missing, False, False, 0)
    dialog.get_content_area().pack_start(extras, True, True, 0)
    extras.show_all()
    _guard(dialog, config, spec, missing)
    _name_for_tests(dialog, [arg.name for arg in shown])
    ok = dialog.run()
    dialog.destroy()
    return bool(ok)


def _item(dialog, arg):
    """The dialog's item for one argument. An automatic-or-custom pair (an argument with a
    `number`) is one row whose number can be edited only when "Custom" is chosen."""
    number = getattr(arg, "number", None)
    if number is None:
        return arg.name
    row = f"{arg.name}-row"
    box = dialog.fill_box(row, [arg.name, number.name])
    box.set_orientation(Gtk.Orientation.HORIZONTAL)
    box.set_spacing(12)
    custom = [GObject.Value(GObject.TYPE_STRING, nick) for nick, _label in arg.choices
              if nick != arg.auto]
    dialog.set_sensitive_if_in(number.name, None, arg.name,
                               Gimp.ValueArray.new_from_values(custom), True)
    return row


def _guard(dialog, config, spec, label):
    """OK only once nothing is missing (a class to type, a folder to choose); until then the
    label says what to give. Nothing is refused later, after the engine was asked."""
    def update(*_args):
        message = spec.missing(config, dialog=True)
        dialog.set_response_sensitive(Gtk.ResponseType.OK, message is None)
        label.set_markup(f"<b>{GLib.markup_escape_text(message)}</b>" if message else "")
        label.set_visible(message is not None)

    config.connect("notify", update)
    update()


def _label(text):
    label = Gtk.Label(label=text, xalign=0.0)
    label.set_line_wrap(True)
    return label


def _class_buttons(suggestions, clicked):
    """The suggested classes with their probabilities as buttons; clicked(class) on a click."""
    flow = Gtk.FlowBox()
    flow.set_selection_mode(Gtk.SelectionMode.NONE)
    flow.set_max_children_per_line(3)
    for s in suggestions:
        cls = str(s.get("class"))
        button = Gtk.Button(label=f"{cls}  {float(s.get('prob', 0)) * 100:.0f}%")
        button.set_name(f"suggestion:{cls}")
        button.connect("clicked", lambda _b, c=cls: clicked(c))
        flow.add(button)
    return flow


def choose_class(spec, suggestions):
    """Suggest's answer: its classes as buttons. The class clicked (Insert then opens with it),
    or None when the dialog is closed."""
    GimpUi.init("stylefill")
    dialog = GimpUi.Dialog(title=title(spec), role="stylefill-suggest")
    dialog.add_button("_Close", Gtk.ResponseType.CLOSE)
    box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=8)
    box.set_border_width(12)
    chosen = []
    if suggestions:
        box.pack_start(_label("Objects that fit the selection. Click one to insert it:"),
                       False, False, 0)
        box.pack_start(_class_buttons(suggestions, lambda cls: (
            chosen.append(cls), dialog.response(Gtk.ResponseType.OK))), False, False, 0)
    else:
        box.pack_start(_label("The engine has no suggestion for this selection."),
                       False, False, 0)
    dialog.get_content_area().pack_start(box, True, True, 0)
    box.show_all()
    _name_for_tests(dialog)
    dialog.run()
    dialog.destroy()
    return chosen[0] if chosen else None


def _pixbuf(png, size=THUMB):
    loader = GdkPixbuf.PixbufLoader.new_with_type("png")
    loader.write(png)
    loader.close()
    pb = loader.get_pixbuf()
    scale = size / max(pb.get_width(), pb.get_height())
    return pb.scale_simple(max(1, int(pb.get_width() * scale)), max(1, int(pb.get_height() * scale)),
                           GdkPixbuf.InterpType.BILINEAR)


def _style_tip(style_id, info):
    """The style's weight and how visibly it differs from its nearest other style."""
    tip = f"style {style_id}"
    if info.get("weight") is not None:
        tip += f": weight {float(info['weight']):.2f}"
    if info.get("nearest") is not None and info.get("distance") is not None:
        seen = "looks like" if info.get("near_duplicate") else "differs visibly from"
        tip += (f"; {seen} its nearest, style {info['nearest']} "
                f"(distance {float(info['distance']):.2f}, 1 = seen at a glance)")
    return tip


class StylePicker:
    """Radio buttons with the preview of each learned style of the class in the config; they
    set (and follow) the Style choice, whose "auto" is the first button. A class without learned
    styles gets "auto", and the engine starts learning them in the background."""

    def __init__(self, engine, config, style, backbone):
        self.engine, self.config, self.style, self.backbone = engine, config, style, backbone
        self.widget = Gtk.Frame(label="Style")
        self.box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=4)
        self.widget.add(self.box)
        self.buttons = {}
        self._pending = None
        self._shown_for = None
        config.connect("notify::class-name", self._changed)
        config.connect("notify::backbone", self._changed)
        config.connect("notify::style", self._style_changed)
        self.refresh()

    def _changed(self, *_args):
        if self._pending:
            GLib.source_remove(self._pending)
        self._pending = GLib.timeout_add(500, self._refresh_later)  # not on every keystroke

    def _refresh_later(self):
        self._pending = None
        self.refresh()
        return False

    def _style_changed(self, *_args):
        button = self.buttons.get(self.config.get_property(self.style.name))
        if button is not None and not button.get_active():
            button.set_active(True)

    def refresh(self):
        cls = (self.config.get_property("class-name") or "").strip()
        backbone = self.backbone.value(self.config)
        if (cls, backbone) == self._shown_for:
            return
        self._shown_for = (cls, backbone)
        self.buttons = {}
        for child in self.box.get_children():
            self.box.remove(child)
        if not cls:
            self._say("Choose a class to see its styles.")
            return
        try:
            listing = self.engine.styles(cls, backbone)
        except sf.EngineError as exc:
            self._say(str(exc))
            return
        nicks = {nick for nick, _label in self.style.choices}
        styles = [s for s in (listing or {}).get("styles") or [] if str(s.get("id")) in nicks]
        if not styles:
            self._unlearned(cls)
            return
        self._show(cls, backbone, styles, listing.get("distinct"))

    def _unlearned(self, cls):
        """Auto, and the engine asked to learn the class's styles in the background (one-time),
        so the next dialog has thumbnails; an engine that cannot is no reason to fail."""
        self.config.set_property(self.style.name, self.style.auto)
        try:
            learning = self.engine.prefetch_styles(cls, self.backbone.value(self.config))
        except sf.EngineError:
            learning = {}
        state = learning.get("state")
        later = {"learning": learning.get("stage"),
                 "waiting": "the engine learns them in the background (one-time, cached)",
                 "learned": "they have just been learned: reopen the dialog to choose one"}.get(
                     state, "Learn styles... makes styles to choose from")
        self._say(f"No styles of '{cls}' learned yet, so Auto uses the class alone; {later}.")

    def _show(self, cls, backbone, styles, distinct=None):
        """Auto, then the styles in the engine's order (farthest-first: the first ones differ
        most); a style that looks like one before it is dimmed and says which ("≈ style 0"),
        and a line says so when they all look alike."""
        if len(styles) > 1 and distinct == 1:
            note = _label("These styles look alike: their previews differ less than a glance "
                          "shows, so Auto is as good a choice as any.")
            note.set_name("note:styles")
            self.box.pack_start(note, False, False, 0)
        flow = Gtk.FlowBox()
        flow.set_selection_mode(Gtk.SelectionMode.NONE)
        flow.set_max_children_per_line(6)
        entries = [(self.style.auto, None)] + [(str(s["id"]), s) for s in styles]
        group = None
        for nick, info in entries:
            button = Gtk.RadioButton.new_from_widget(group)
            group = group or button
            button.set_name(f"style:{nick}")
            if info is None:
                button.set_label("Auto")
            else:
                self._decorate(button, cls, backbone, info)
            self.buttons[nick] = button
            flow.add(button)
        if self.config.get_property(self.style.name) not in self.buttons:
            self.config.set_property(self.style.name, entries[0][0])
        self._style_changed()
        for nick, button in self.buttons.items():
            button.connect("toggled", self._chosen, nick)
        self.box.pack_start(flow, True, True, 0)
        self.box.show_all()

    def _decorate(self, button, cls, backbone, info):
        style_id = int(info["id"])
        alike = info.get("looks_like")
        button.set_label(f"Style {style_id}" if alike is None else f"Style {style_id}\n≈ style {alike}")
        if alike is not None:
            button.set_opacity(0.6)   # still a choice, but the one it looks like comes first
        try:
            png = self.engine.style_preview(cls, style_id, backbone)
            button.set_image(Gtk.Image.new_from_pixbuf(_pixbuf(png)))
            button.set_always_show_image(True)
            button.set_image_position(Gtk.PositionType.TOP)
        except (sf.EngineError, GLib.Error):
            pass  # the label alone still chooses the style
        button.set_tooltip_text(_style_tip(style_id, info))

    def _chosen(self, button, nick):
        if button.get_active():
            self.config.set_property(self.style.name, nick)

    def _say(self, text):
        self.box.pack_start(_label(text), False, False, 0)
        self.box.show_all()


# ------------------------------------------------------------------------- for the GUI tests

UI_MAP = "STYLEFILL_UI_MAP"


def _name_for_tests(dialog, args=()):
    """With $STYLEFILL_UI_MAP set (tests/gimp/test_gimp_gui.py), write where each named widget
    (suggestion:<class>, style:<nick>, arg:<argument>, class-name: its entry, ok, missing) is
    on the screen, with its label and state, every 0.25 s while the dialog is open: xdotool
    then clicks what GTK really drew."""
    path = os.environ.get(UI_MAP)
    if not path:
        return
    ok = dialog.get_widget_for_response(Gtk.ResponseType.OK)
    if ok is not None:
        ok.set_name("ok")
    for name in args:
        dialog.get_widget(name, GObject.TYPE_NONE).set_name(f"arg:{name}")
    if "class-name" in args:
        entry = _find(dialog.get_widget("class-name", GObject.TYPE_NONE),
                      lambda w: isinstance(w, Gtk.Entry))
        if entry is not None:
            entry.set_name("class-name")
    alive = [True]
    dialog.connect("destroy", lambda *_args: alive.clear())

    def write():
        if alive and dialog.get_mapped():
            found = {}
            _collect(dialog, dialog, found)
            with open(path + ".tmp", "w", encoding="utf-8") as f:
                json.dump({"title": dialog.get_title(), "widgets": found}, f)
            os.replace(path + ".tmp", path)
        return bool(alive)

    GLib.timeout_add(250, write)


def _find(widget, match):
    if match(widget):
        return widget
    children = widget.get_children() if isinstance(widget, Gtk.Container) else []
    return next((w for w in (_find(c, match) for c in children) if w is not None), None)


def _collect(top, widget, found):
    name = widget.get_name()
    if (":" in name or name in ("ok", "class-name", "missing")) and widget.get_mapped():
        alloc = widget.get_allocation()
        x, y = widget.translate_coordinates(top, alloc.width // 2, alloc.height // 2)
        _ok, ox, oy = top.get_window().get_origin()
        label = (widget.get_text() if isinstance(widget, Gtk.Entry) else widget.get_label()
                 if isinstance(widget, (Gtk.Label, Gtk.Button)) else None)
        found[name] = {"x": ox + x, "y": oy + y, "label": label, "sensitive": widget.is_sensitive(),
                       "image": isinstance(widget, Gtk.Button) and widget.get_image() is not None,
                       "active": isinstance(widget, Gtk.ToggleButton) and widget.get_active(),
                       "focus": widget.has_focus()}
    if isinstance(widget, Gtk.Container):
        for child in widget.get_children():
            _collect(top, child, found)
