"""Helpers for the batch snippets the GIMP tests run in gimp-console-3.0 (python-fu-eval).

Each test appends its own lines and the call done(), which prints `RESULT <json>` for pytest to
check. Standard library and gi only, like the plug-in: GIMP's Python in the rootfs has no numpy.
"""

import hashlib
import json
import os
import sys
import time

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402

PHOTOS = os.environ["SF_PHOTOS"]
PDB = Gimp.get_pdb()
SUCCESS = Gimp.PDBStatusType.SUCCESS
OUT = {}


def load(name):
    """A real photo as a new image; (image, its layer)."""
    path = os.path.join(PHOTOS, name + ".png")
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(path))
    return image, image.get_layers()[0]


def pixels(drawable, box=None):
    """R'G'B'A u8 bytes of the drawable (or of box = x, y, w, h in its own coordinates)."""
    x, y, w, h = box or (0, 0, drawable.get_width(), drawable.get_height())
    rect = Gegl.Rectangle.new(x, y, w, h)
    return bytes(drawable.get_buffer().get(rect, 1.0, "R'G'B'A u8", Gegl.AbyssPolicy.NONE))


def digest(drawable):
    return hashlib.sha256(pixels(drawable)).hexdigest()


def call(name, image, drawables, run_mode=Gimp.RunMode.NONINTERACTIVE, **props):
    """Run a procedure (NONINTERACTIVE unless told): {status, seconds, message | values}."""
    proc = PDB.lookup_procedure(name)
    cfg = proc.create_config()
    cfg.set_property("run-mode", run_mode)
    cfg.set_property("image", image)
    cfg.set_core_object_array("drawables", drawables)
    for key, value in props.items():
        cfg.set_property(key.replace("_", "-"), value)
    start = time.monotonic()
    res = proc.run(cfg)
    status = res.index(0)
    out = {"status": status.value_nick, "seconds": round(time.monotonic() - start, 2)}
    if status == SUCCESS:
        out["values"] = [res.index(i) for i in range(1, res.length())]
    else:
        out["message"] = str(res.index(1)) if res.length() > 1 else ""
    print(f"called {name}: {out['status']} in {out['seconds']} s", file=sys.stderr, flush=True)
    return out


def layer_info(layer, original=None):
    """Where a layer is, how much of it is opaque, how varied it is, and (given the original
    layer) how far its opaque pixels are from the original's pixels underneath."""
    _ok, x, y = layer.get_offsets()
    w, h = layer.get_width(), layer.get_height()
    data = pixels(layer)
    alpha = data[3::4]
    grey = [(data[i] + data[i + 1] + data[i + 2]) / 3 for i in range(0, len(data), 4)]
    seen = [g for g, a in zip(grey, alpha, strict=True) if a]
    mean = sum(seen) / len(seen) if seen else 0.0
    std = (sum((g - mean) ** 2 for g in seen) / len(seen)) ** 0.5 if seen else 0.0
    info = {"name": layer.get_name(), "offset": [x, y], "size": [w, h],
            "coverage": len(seen) / (w * h), "mean": mean, "std": std,
            "has_mask": layer.get_mask() is not None}
    if original is not None:
        _ok, ox, oy = original.get_offsets()
        under = pixels(original, (x - ox, y - oy, w, h))
        diffs = [abs(data[i + c] - under[i + c]) for i in range(0, len(data), 4) if data[i + 3]
                 for c in range(3)]
        info["diff_to_original"] = sum(diffs) / len(diffs) if diffs else 0.0
    return info


def names(image):
    return [layer.get_name() for layer in image.get_layers()]


def flag(name):
    """Tell the test on the host that a step is done (a file in the shared work folder)."""
    with open(os.path.join(os.environ["SF_WORK"], name), "w") as f:
        json.dump(OUT, f)


def wait_flag(name, timeout=120):
    """Wait until the host has done its step (it creates the file)."""
    path = os.path.join(os.environ["SF_WORK"], name)
    end = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > end:
            raise TimeoutError(f"the test did not create {name} within {timeout} s")
        time.sleep(0.1)


def done():
    print("RESULT " + json.dumps(OUT), flush=True)


def arguments(name):
    """A procedure's own arguments (after run-mode, image and drawables) as they are in the
    PDB: {name: {type, default, choices (for a choice)}}."""
    table = {}
    for spec in PDB.lookup_procedure(name).get_arguments()[3:]:
        entry = {"type": spec.value_type.name, "default": spec.get_default_value()}
        if spec.__gtype__.name == "GimpParamChoice":
            entry["type"] = "choice"
            entry["choices"] = list(Gimp.param_spec_choice_get_choice(spec).list_nicks())
        table[spec.name] = entry
    return table
