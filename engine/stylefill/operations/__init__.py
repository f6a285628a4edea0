"""The operations layer: one typed request per operation and `run(request, progress, cancel)`.

Every surface (CLI, HTTP server, Python, and through HTTP the GIMP plug-in) builds the same
request and calls the same run function; adding an operation is one request class, one run
function and one line in OPERATIONS (docs/architecture.md).
"""

from __future__ import annotations

from ..progress import Cancel, Progress
from . import classify, database, editing, evaluation, inversion, styling, visualization
from .base import Operation, Outcome, Request
from .classify import ClassifyRequest, SuggestRequest
from .database import BuildPatchDBRequest
from .editing import InsertRequest, ModifyRequest
from .evaluation import Table1Request
from .inversion import InvertCodeRequest, InvertRequest
from .styling import LearnStylesRequest, RetrieveRequest
from .visualization import SheetRequest, VisualizeRequest

OPERATIONS: dict[str, Operation] = {op.name: op for op in (
    classify.CLASSIFY,
    classify.SUGGEST,
    inversion.INVERT,
    inversion.INVERT_CODE,
    visualization.VISUALIZE,
    visualization.SHEET,
    editing.INSERT,
    editing.MODIFY,
    styling.LEARN_STYLES,
    styling.RETRIEVE,
    database.BUILD_PATCHDB,
    evaluation.TABLE1,
    evaluation.NATURALNESS,
)}
_BY_REQUEST = {op.request: op for op in OPERATIONS.values()}


def operation_of(request: Request) -> Operation:
    return _BY_REQUEST[type(request)]


def run(request: Request, progress: Progress | None = None, cancel: Cancel | None = None) -> Outcome:
    """Run the operation the request is for; see `Outcome`."""
    return operation_of(request).run(request, progress, cancel)


__all__ = ["OPERATIONS", "Operation", "Outcome", "Request", "run", "operation_of",
           "ClassifyRequest", "SuggestRequest", "InvertRequest", "InvertCodeRequest",
           "VisualizeRequest", "SheetRequest", "InsertRequest", "ModifyRequest",
           "LearnStylesRequest", "RetrieveRequest", "BuildPatchDBRequest", "Table1Request"]
