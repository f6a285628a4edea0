"""What every operation shares: the request base, its field types, the outcome, the registry entry.

A request is a pydantic model whose fields are the operation's options, the same on every
surface: a CLI flag, a `params` field of the HTTP job, a keyword of the Python model. Defaults
are resolved once, in the request: backbone, iterations per task, seed, network size and the
class (name or index to index). Fields marked `Input` are not options but what the operation
works on (a photo, a selection); the CLI reads them from files, the server decodes them from
the request body, Python passes them as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
from PIL import Image
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictInt,
    StrictStr,
)
from pydantic.fields import FieldInfo

from ..backbones import BACKBONES, DEFAULT_BACKBONE, Backbone, check_name, input_size, load_backbone
from ..classes import resolve_class
from ..errors import InputError
from ..images import load_image, to_pil
from ..progress import Cancel, Progress, report


@dataclass(frozen=True)
class Input:
    """Marks a field as an input of the operation ("image" or "selection"), not an option."""

    kind: str


@dataclass(frozen=True)
class OnEngine:
    """Marks a path on the engine's machine: over HTTP it must lie inside the folders the engine
    allows (stylefill.folders); `write` for one the operation writes."""

    write: bool = False


class FieldsError(InputError):
    """Fields that do not go together (neither or both of two alternatives): a malformed request,
    answered like a wrong type over HTTP (422)."""


@dataclass(frozen=True)
class Cli:
    """How an option looks on the command line when it is not a plain `--name` flag."""

    positional: bool = False
    aliases: tuple[str, ...] = ()
    metavar: str | None = None


def _photo(value: Any) -> Image.Image:
    if isinstance(value, Image.Image):
        return value if value.mode == "RGB" else value.convert("RGB")
    if isinstance(value, (str, Path)):
        return load_image(value)
    if isinstance(value, torch.Tensor):
        return to_pil(value)
    raise InputError("an image is a PIL image, a file path or a (1, 3, H, W) tensor in [0, 1]")


def _bool_array(value: Any) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim != 2:
        raise InputError(f"a selection is a 2-D mask of the photo's size, got shape {array.shape}")
    return array.astype(bool, copy=False)


Photo = Annotated[Image.Image, BeforeValidator(_photo), Input("image")]
# An image only some uses of an operation need (on the CLI it is then the positional argument).
OptionalPhoto = Annotated[Image.Image | None,
                          BeforeValidator(lambda v: None if v is None else _photo(v)), Input("image")]
Selection = Annotated[np.ndarray, BeforeValidator(_bool_array), Input("selection")]
# A selection only some uses of an operation have (an edit's result, not a whole image).
OptionalSelection = Annotated[np.ndarray | None,
                              BeforeValidator(lambda v: None if v is None else _bool_array(v)),
                              Input("selection")]
BackboneName = Annotated[str, AfterValidator(check_name),
                        Field(json_schema_extra={"enum": list(BACKBONES)})]
Seed = Annotated[int, Field(ge=0, le=2**32 - 1, description="random seed")]
ClassRef = Annotated[StrictStr | StrictInt, Field(description="ImageNet class name or index 0-999")]
MAX_STYLES = 64  # what `learn_styles --topics` may ask for
PATH_CHARS = 4096  # Linux's PATH_MAX
Size = Annotated[int | None, Field(ge=32, le=2048, description="network input size in px "
                                   "(default: the backbone's)")]


def iters_field(default: int) -> Any:
    """The solver iterations of a task, with that task's default."""
    return Field(default, ge=1, le=20_000, description=f"solver iterations (default {default})")


def check_layer(backbone: str, layer: str | None) -> str:
    """`layer` (default: the backbone's inversion layer) if the backbone has it; an InputError
    listing the layers it has otherwise."""
    net = BACKBONES[backbone]
    layer = layer or net.inversion_layer
    if layer not in net.layer_names():
        raise InputError(f"unknown layer '{layer}' of {backbone}; choose one of: "
                         f"{', '.join(net.layer_names())}")
    return layer


def backbone_field() -> Any:
    return Field(DEFAULT_BACKBONE, description=f"network: one of {', '.join(BACKBONES)}")


class Request(BaseModel):
    """Base of every operation's request; see the module docstring."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, populate_by_name=True)
    _index: int | None = PrivateAttr(None)

    def model_post_init(self, _context: Any) -> None:
        if getattr(self, "size", 0) is None:
            self.size = input_size(self.backbone)
        if getattr(self, "cls", None) is not None:
            self._index = resolve_class(self.cls)[0]
        if "selection" in self.input_kinds() and self.selection is not None:
            self._check_selection()
        self.check()

    def check(self) -> None:
        """Rules between fields (an InputError names what to change); none by default."""

    def _check_selection(self) -> None:
        w, h = self.image.size
        if self.selection.shape != (h, w):
            raise InputError(f"the selection must be {w}x{h} (the photo's size), got "
                             f"{self.selection.shape[1]}x{self.selection.shape[0]}")
        if not self.selection.any():
            raise InputError("the selection is empty: select the area first")

    @property
    def index(self) -> int:
        """The class as an ImageNet index (resolved once, from a name or an index)."""
        if self._index is None:
            raise InputError("this request has no class")
        return self._index

    @classmethod
    def input_kinds(cls, required: bool = False) -> dict[str, str]:
        """{field: "image" | "selection"} for the fields that are inputs, not options (only the
        ones every request needs, with `required`)."""
        return {name: m.kind for name, f in cls.model_fields.items()
                for m in f.metadata if isinstance(m, Input) and (f.is_required() or not required)}

    @classmethod
    def option_fields(cls) -> dict[str, FieldInfo]:
        """The option fields, by their Python name."""
        return {name: f for name, f in cls.model_fields.items() if name not in cls.input_kinds()}

    def params(self) -> dict[str, Any]:
        """The options as JSON (by their protocol names), defaults resolved."""
        return self.model_dump(mode="json", by_alias=True, exclude=set(self.input_kinds()))


@dataclass
class Outcome:
    """What an operation made: an image (for an edit, the whole photo), for edits the layer an
    editor places at `offset`, metrics (JSON), files it wrote, and a summary for people."""

    metrics: dict[str, Any]
    image: Image.Image | None = None
    layer: Image.Image | None = None
    offset: tuple[int, int] = (0, 0)
    files: dict[str, str] = field(default_factory=dict)
    summary: str = ""


Run = Callable[[Any, Progress | None, Cancel | None], Outcome]


@dataclass(frozen=True)
class Operation:
    """One registry entry: the request type, the run function and how surfaces show it.

    `makes`: "image" (the CLI writes -o), "edit" (-o the whole photo, --layer the layer) or
    "data" (metrics and files only). `immediate` operations answer at once over HTTP
    (POST /v1/<name>) instead of going through the job queue.
    """

    name: str
    request: type[Request]
    run: Run
    help: str
    makes: Literal["image", "edit", "data"] = "data"
    immediate: bool = False
    command: tuple[str, ...] = ()

    @property
    def words(self) -> tuple[str, ...]:
        """The CLI subcommand (e.g. ("styles", "learn"))."""
        return self.command or (self.name.replace("_", "-"),)


def network(name: str, progress: Progress | None) -> Backbone:
    report(progress, 0.0, "loading the network")
    return load_backbone(name)
