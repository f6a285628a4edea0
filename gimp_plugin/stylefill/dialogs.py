"""Interactive dialogs: a GimpUi.ProcedureDialog made from the procedure's entry in the table
(stylefill.PROCEDURES; GIMP keeps the last values), plus what a dialog of properties cannot
show: the engine's class suggestions for the selection and thumbnails of the learned styles of
the chosen class, which set the Style choice.

Imported only for INTERACTIVE runs, so scripted and batch runs never need GTK or a display.
"""

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
gi.require_version("Gtk", "3.0")
gi.require_version("GdkPixbuf", "2.0")
import client as sf  # noqa: E402
from gi.repository import GdkPixbuf, Gimp, GimpUi, GLib, GObject, Gtk  # noqa: E402

THUMB = 96


def show(procedure, config, spec, engine=None, suggestions=None, note=None):
    """Run the dialog; True when the user pressed OK (the config then holds the choices).

    engine: a connected client.Client for the style thumbnails (None: no thumbnails).
    suggestions: [{class, prob}] for the selection, offered as buttons that fill in the class.
    note: one line shown below the arguments (for example why there are no suggestions).
    """
    GimpUi.init("stylefill")
    title = f"Stylefill: {spec.title[0].lower()}{spec.title[1:]}"
    dialog = GimpUi.ProcedureDialog.new(procedure, config, title)
    dialog.fill([_item(dialog, arg) for arg in spec.args])
    extras = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=6)
    extras.set_border_width(6)
    if note:
        label = Gtk.Label(label=note, xalign=0.0)
        label.set_line_wrap(True)
        extras.pack_start(label, False, False, 0)
    if suggestions:
        extras.pack_start(_suggestion_buttons(config, suggestions), False, False, 0)
    if engine is not None and "styles" in spec.extras:
        picker = StylePicker(engine, config, spec.arg("style"), spec.arg("backbone"))
        extras.pack_start(picker.widget, True, True, 0)
    dialog.get_content_area().pack_start(extras, True, True, 0)
    extras.show_all()
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


def _suggestion_buttons(config, suggestions):
    frame = Gtk.Frame(label="Classes for the selection (click to use)")
    flow = Gtk.FlowBox()
    flow.set_selection_mode(Gtk.SelectionMode.NONE)
    flow.set_max_children_per_line(3)
    for s in suggestions:
        cls = str(s.get("class"))
        button = Gtk.Button(label=f"{cls}  {float(s.get('prob', 0)) * 100:.0f}%")
        button.connect("clicked", lambda _b, c=cls: config.set_property("class-name", c))
        flow.add(button)
    frame.add(flow)
    return frame


def _pixbuf(png, size=THUMB):
    loader = GdkPixbuf.PixbufLoader.new_with_type("png")
    loader.write(png)
    loader.close()
    pb = loader.get_pixbuf()
    scale = size / max(pb.get_width(), pb.get_height())
    return pb.scale_simple(max(1, int(pb.get_width() * scale)), max(1, int(pb.get_height() * scale)),
                           GdkPixbuf.InterpType.BILINEAR)


class StylePicker:
    """Radio buttons with the preview of each learned style of the class in the config; they
    set (and follow) the Style choice, whose "auto" (when it has one) is the first button."""

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
            self._say("Choose a class to see its learned styles.")
            return
        try:
            listing = self.engine.styles(cls, backbone)
        except sf.EngineError as exc:
            self._say(str(exc))
            return
        nicks = {nick for nick, _label in self.style.choices}
        styles = [s for s in (listing or {}).get("styles") or [] if str(s.get("id")) in nicks]
        if not styles:
            self._say(f"No styles learned for '{cls}' yet: use Learn styles from folder... "
                      "(the style is then chosen automatically).")
            return
        self._show(cls, backbone, styles)

    def _show(self, cls, backbone, styles):
        flow = Gtk.FlowBox()
        flow.set_selection_mode(Gtk.SelectionMode.NONE)
        flow.set_max_children_per_line(6)
        entries = ([(self.style.auto, None)] if self.style.auto else []) + \
            [(str(s["id"]), s) for s in styles]
        group = None
        for nick, info in entries:
            button = Gtk.RadioButton.new_from_widget(group)
            group = group or button
            if info is None:
                button.set_label("Auto")
            else:
                self._decorate(button, cls, backbone, info)
            self.buttons[nick] = button
            flow.add(button)
        self._style_changed()
        for nick, button in self.buttons.items():
            button.connect("toggled", self._chosen, nick)
        self.box.pack_start(flow, True, True, 0)
        self.box.show_all()

    def _decorate(self, button, cls, backbone, info):
        style_id = int(info["id"])
        button.set_label(str(style_id))
        try:
            png = self.engine.style_preview(cls, style_id, backbone)
            button.set_image(Gtk.Image.new_from_pixbuf(_pixbuf(png)))
            button.set_always_show_image(True)
            button.set_image_position(Gtk.PositionType.TOP)
        except (sf.EngineError, GLib.Error):
            pass  # the number alone still chooses the style
        weight = info.get("weight")
        if weight is not None:
            button.set_tooltip_text(f"style {style_id}: weight {float(weight):.2f}")

    def _chosen(self, button, nick):
        if button.get_active():
            self.config.set_property(self.style.name, nick)

    def _say(self, text):
        label = Gtk.Label(label=text, xalign=0.0)
        label.set_line_wrap(True)
        self.box.pack_start(label, False, False, 0)
        self.box.show_all()
