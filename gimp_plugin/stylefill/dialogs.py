"""Interactive dialogs: GimpUi.ProcedureDialog for the procedure's own arguments (so GIMP keeps
the last values), plus what a dialog of properties cannot show: the engine's class suggestions
for the selection and thumbnails of the learned styles of the chosen class.

Imported only for INTERACTIVE runs, so scripted and batch runs never need GTK or a display.
"""

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
gi.require_version("Gtk", "3.0")
gi.require_version("GdkPixbuf", "2.0")
import client as sf  # noqa: E402
from gi.repository import GdkPixbuf, GimpUi, GLib, Gtk  # noqa: E402

TITLES = {
    "suggest": "Stylefill: suggest objects",
    "insert": "Stylefill: insert object",
    "modify": "Stylefill: modify object",
    "visualize": "Stylefill: visualize class",
    "invert": "Stylefill: invert layer features",
    "learn-styles": "Stylefill: learn styles",
}
THUMB = 96


def show(procedure, config, short, engine=None, suggestions=None, note=None):
    """Run the dialog; True when the user pressed OK (the config then holds the choices).

    engine: a connected client.Client for the style thumbnails (None: no thumbnails).
    suggestions: [{class, prob}] for the selection, offered as buttons that fill in the class.
    note: one line shown above the arguments (for example why there are no suggestions).
    """
    GimpUi.init("stylefill")
    dialog = GimpUi.ProcedureDialog.new(procedure, config, TITLES[short])
    dialog.fill(None)
    area = dialog.get_content_area()
    extras = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=6)
    extras.set_border_width(6)
    if note:
        label = Gtk.Label(label=note, xalign=0.0)
        label.set_line_wrap(True)
        extras.pack_start(label, False, False, 0)
    if suggestions:
        extras.pack_start(_suggestion_buttons(config, suggestions), False, False, 0)
    if engine is not None and short in ("insert", "modify", "visualize"):
        extras.pack_start(StylePicker(engine, config, allow_auto=short != "modify").widget,
                          True, True, 0)
    area.pack_start(extras, True, True, 0)
    extras.show_all()
    ok = dialog.run()
    dialog.destroy()
    return bool(ok)


def _suggestion_buttons(config, suggestions):
    frame = Gtk.Frame(label="Suggested for the selection (click to use)")
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
    """Radio buttons with the preview of each learned style of the class in the config."""

    def __init__(self, engine, config, allow_auto=True):
        self.engine, self.config, self.allow_auto = engine, config, allow_auto
        self.widget = Gtk.Frame(label="Style")
        self.box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=4)
        self.widget.add(self.box)
        self._pending = None
        self._shown_for = None
        config.connect("notify::class-name", self._class_changed)
        self.refresh()

    def _class_changed(self, *_args):
        if self._pending:
            GLib.source_remove(self._pending)
        self._pending = GLib.timeout_add(500, self._refresh_later)  # not on every keystroke

    def _refresh_later(self):
        self._pending = None
        self.refresh()
        return False

    def refresh(self):
        cls = (self.config.get_property("class-name") or "").strip()
        if cls == self._shown_for:
            return
        self._shown_for = cls
        for child in self.box.get_children():
            self.box.remove(child)
        if not cls:
            self._say("Choose a class to see its learned styles.")
            return
        try:
            listing = self.engine.styles(cls)
        except sf.EngineError as exc:
            self._say(str(exc))
            return
        styles = (listing or {}).get("styles") or []
        if not styles:
            self._say(f"No styles learned for '{cls}' yet: use Learn styles from folder... "
                      "(the style is then chosen automatically).")
            return
        flow = Gtk.FlowBox()
        flow.set_selection_mode(Gtk.SelectionMode.NONE)
        flow.set_max_children_per_line(6)
        current = int(self.config.get_property("style"))
        group = None
        entries = ([(-1, None)] if self.allow_auto else []) + [(int(s["id"]), s) for s in styles]
        for style_id, info in entries:
            button = Gtk.RadioButton.new_from_widget(group)
            group = group or button
            if info is None:
                button.set_label("Automatic")
            else:
                button.set_label(f"{style_id}")
                try:
                    image = Gtk.Image.new_from_pixbuf(_pixbuf(self.engine.style_preview(cls, style_id)))
                    button.set_image(image)
                    button.set_always_show_image(True)
                    button.set_image_position(Gtk.PositionType.TOP)
                except (sf.EngineError, GLib.Error):
                    pass  # the number alone still chooses the style
                weight = info.get("weight")
                if weight is not None:
                    button.set_tooltip_text(f"style {style_id}: weight {float(weight):.2f}")
            button.set_active(style_id == current)
            button.connect("toggled", self._chosen, style_id)
            flow.add(button)
        self.box.pack_start(flow, True, True, 0)
        self.box.show_all()

    def _chosen(self, button, style_id):
        if button.get_active():
            self.config.set_property("style", style_id)

    def _say(self, text):
        label = Gtk.Label(label=text, xalign=0.0)
        label.set_line_wrap(True)
        self.box.pack_start(label, False, False, 0)
        self.box.show_all()
