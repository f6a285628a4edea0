"""docs/operations.md, generated from the registry: every operation on every surface.

    .venv/bin/python -m stylefill.operations.reference > docs/operations.md

A test keeps the file equal to this output, so the table never drifts from the code.
"""

from __future__ import annotations

import inspect
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic.fields import FieldInfo

from . import OPERATIONS, Operation

INPUTS = {"image": "an image", "selection": "a selection (mask or rect)"}
OUTPUTS = {"image": "an image", "edit": "the photo with the result, and the layer at its offset",
           "data": "metrics only"}


def _type(annotation: Any) -> str:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    origin = get_origin(annotation)
    if origin is Literal:
        return " \\| ".join(str(a) for a in get_args(annotation))
    if origin in (Union, types.UnionType):
        parts = [_type(a) for a in get_args(annotation) if a is not type(None)]
        return " or ".join(dict.fromkeys(parts))
    if origin is list:
        return f"list of {_type(get_args(annotation)[0])}"
    return getattr(annotation, "__name__", str(annotation))


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True)
    if value is None:
        return "auto"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value).lower() if isinstance(value, bool) else str(value)


def _cli(op: Operation) -> str:
    kinds, required = op.request.input_kinds(), op.request.input_kinds(required=True)
    words = ["stylefill", *op.words]
    if "image" in kinds:
        words.append("PHOTO" if "selection" in required else "IMAGE")
    if "selection" in kinds:
        words.append("(--mask M.png | --rect x,y,w,h)" if "selection" in required
                     else "[--mask M.png | --rect x,y,w,h]")
    if op.makes != "data":
        words.append("-o OUT.png")
    if op.makes == "edit":
        words.append("[--layer L.png]")
    return " ".join(words)


def _http(op: Operation) -> str:
    kinds = op.request.input_kinds()
    body = ", ".join(f"`{k}`" for k in (["image"] if "image" in kinds else [])
                     + (["mask` or `rect"] if "selection" in kinds else []))
    if op.immediate:
        return f"`POST /v1/{op.name}` (at once; options beside {body or 'nothing'})"
    return f"job kind `{op.name}` (`POST /v1/jobs`, options in `params`{'; ' + body if body else ''})"


def section(op: Operation) -> str:
    lines = [f"### {' '.join(op.words)}", "", inspect.cleandoc(op.request.__doc__), "",
             f"- CLI: `{_cli(op)}`", f"- HTTP: {_http(op)}",
             f"- Python: `run({op.request.__name__}(...))` -> {OUTPUTS[op.makes]}", "",
             "| option | type | default | meaning |", "|---|---|---|---|"]
    for name, info in op.request.option_fields().items():
        key = info.alias or name
        lines.append(f"| `{key}` | {_type(info.annotation)} | {_default(info)} | "
                     f"{(info.description or '').replace('|', '/')} |")
    return "\n".join(lines)


def markdown() -> str:
    head = ["# Operations", "",
            "Generated from the operations' registry by `python -m stylefill.operations.reference`;",
            "do not edit by hand. Each option is the same field on every surface: the CLI flag",
            "`--name` (dashes for underscores), the HTTP `params` field `name`, the Python keyword.",
            "`auto` means the option is left out and the operation decides (`size`: the",
            "backbone's input size; `style`: no style pathway; `topics`: 4...).", "",
            "| operation | CLI | HTTP |", "|---|---|---|"]
    head += [f"| {op.name} | `stylefill {' '.join(op.words)}` | "
             f"{'POST /v1/' + op.name if op.immediate else 'job `' + op.name + '`'} |"
             for op in OPERATIONS.values()]
    return "\n".join(head + [""] + ["\n\n".join(section(op) for op in OPERATIONS.values())]) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
