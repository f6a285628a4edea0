"""The Python API: the same requests and `run` as the CLI and the HTTP server.

    from stylefill import api
    out = api.run(api.InsertRequest(image="field.jpg", selection=mask, cls="hay", style=1))
    out.image.save("field-hay.png"); print(out.metrics["prob_after"])

Every option is a field of the request, with the CLI flag's and the HTTP parameter's name and
default; `run(request, progress, cancel)` returns an `Outcome` (image, layer and offset for
edits, metrics, files, summary). Work on tensors at network resolution, below the
operations, is in `stylefill.optvis.recipes`.
"""

from .operations import (
    OPERATIONS,
    BuildPatchDBRequest,
    ClassifyRequest,
    InsertRequest,
    InvertCodeRequest,
    InvertRequest,
    LearnStylesRequest,
    ModifyRequest,
    Operation,
    Outcome,
    Request,
    RetrieveRequest,
    SheetRequest,
    SuggestRequest,
    VisualizeRequest,
    run,
)

__all__ = ["OPERATIONS", "Operation", "Outcome", "Request", "run", "BuildPatchDBRequest",
           "ClassifyRequest", "InsertRequest", "InvertCodeRequest", "InvertRequest",
           "LearnStylesRequest", "ModifyRequest", "RetrieveRequest", "SheetRequest",
           "SuggestRequest", "VisualizeRequest"]
