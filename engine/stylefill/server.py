"""The engine's HTTP server (docs/protocol.md): what the GIMP plug-in talks to.

Routes only translate: JSON and base64 images in, the operations' requests (stylefill.
operations) run at once or through the job queue, JSON out. The job kinds, their `params` and
the immediate routes are generated from the operations' registry. Every route but health and
the schema needs the token, and every bad input is answered with a 4xx and a `detail` a user
can act on.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import secrets
import socket
import sys
from collections.abc import Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from . import __version__, styles
from .backbones import BACKBONES, DEFAULT_BACKBONE, check_name
from .backbones import info as backbone_info
from .classes import resolve_class
from .config import DEFAULT_HOST, DEFAULT_PORT, ensure_token, token_path
from .errors import InputError, StylefillError
from .images import decode_image, selection_mask
from .jobs import DONE, FAILED, JobQueue, QueueFull, UnknownJob
from .operations import OPERATIONS, Operation
from .operations import Request as OperationRequest
from .operations.base import network
from .paths import models_dir
from .style_learning import LEARNER, OFF, Learning

API_VERSION = 1
MAX_BODY = 256 * 1024 * 1024  # a 64-megapixel PNG in base64 fits with room to spare


# Requests. Unknown fields are refused so a typo ("clas") is an error, not a silent default.

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Selection(_Strict):
    image: str | None = Field(None, description="base64 of an encoded image (PNG recommended)")
    mask: str | None = Field(None, description="base64 PNG of the image's size; non-zero (or "
                             "alpha) = selected")
    rect: tuple[int, int, int, int] | None = Field(None, description="[x, y, w, h] instead of a mask")


QUEUED_KINDS = tuple(name for name, op in OPERATIONS.items() if not op.immediate)


class JobRequest(_Selection):
    kind: Literal[QUEUED_KINDS]  # type: ignore[valid-type]
    params: dict[str, Any] = Field(default_factory=dict, description="the operation's options "
                                   "(docs/operations.md), by their names there")


def _options(op: Operation) -> dict[str, Any]:
    return {name: (info.annotation, info) for name, info in op.request.option_fields().items()}


# The `params` of each job kind, and the body of each immediate operation: generated from the
# operation's request, so every option is the same field as the CLI flag and the Python one.
PARAMS: dict[str, type[BaseModel]] = {
    name: create_model(f"{op.request.__name__}Params", __base__=_Strict, **_options(op))
    for name, op in OPERATIONS.items() if not op.immediate}
BODIES: dict[str, type[BaseModel]] = {
    name: create_model(f"{op.request.__name__}Body", __base__=_Selection, **_options(op))
    for name, op in OPERATIONS.items() if op.immediate}


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
    layers: list[str] = Field(description="what `invert --layer` takes, shallow to deep")


class Backbones(BaseModel):
    default: str
    backbones: list[BackboneInfo]


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
    png: str | None = Field(description="base64 RGBA PNG: the layer of an edit, else the image; "
                            "null for kinds that make no image")


BearerToken = Annotated[HTTPAuthorizationCredentials | None, Depends(HTTPBearer(
    auto_error=False, description="the token file in the engine's config dir (see `stylefill serve`)"))]


def create_app(token: str, *, max_queued: int = 4, max_body: int = MAX_BODY,
               background_styles: bool = True) -> FastAPI:
    """The engine as an ASGI app: one CPU job queue, `token` required on /v1 routes but health.
    With `background_styles`, an insert in "any style" of a class without styles starts that
    class's data-free styles in the background (for the next insert; style_learning)."""
    queue = JobQueue(max_queued=max_queued)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        queue.start()
        yield
        queue.close()
        LEARNER.close()

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
        return {"default": DEFAULT_BACKBONE, "backbones": [backbone_info(n) for n in BACKBONES]}

    for name in BODIES:
        _immediate_route(v1, OPERATIONS[name])
    _style_routes(v1, background_styles)
    _job_routes(v1, queue, background_styles)
    app.include_router(v1)
    return app


def _immediate_route(router: APIRouter, op: Operation) -> None:
    """POST /v1/<name>: the operation at once, beside any job (a few forward passes)."""

    def handler(body: Any) -> dict:
        return op.run(_request(op, body.model_dump(exclude={"image", "mask", "rect"},
                                                   exclude_unset=True, by_alias=True), body),
                      None, None).metrics

    handler.__annotations__ = {"body": BODIES[op.name], "return": dict}
    router.post(f"/{op.name}", name=op.name, description=op.request.__doc__)(handler)


def _style_routes(router: APIRouter, background_styles: bool) -> None:
    @router.get("/styles/{cls}")
    def styles_list(cls: str, backbone: str = DEFAULT_BACKBONE) -> dict:
        return _style_set(cls, backbone).listing()

    @router.get("/styles/{cls}/{style_id}/preview.png", response_class=FileResponse)
    def style_preview(cls: str, style_id: int, backbone: str = DEFAULT_BACKBONE) -> FileResponse:
        style_set = _style_set(cls, backbone)
        try:
            path = style_set.preview_path(style_id)
        except InputError as exc:
            raise HTTPException(404, str(exc)) from None
        if not path.is_file():
            raise HTTPException(404, f"style {style_id} of '{cls}' has no preview image")
        return FileResponse(path, media_type="image/png")

    @router.post("/styles/{cls}/prefetch")
    def styles_prefetch(cls: str, backbone: str = DEFAULT_BACKBONE) -> dict:
        """Learn the class's data-free styles in the background unless it has styles: call it
        for the classes a user is about to choose from; again, to see how far it got."""
        check_name(backbone)
        index, name = resolve_class(cls)
        if not background_styles:
            return Learning(name, index, backbone, models_dir(), state=OFF, stage="this engine "
                            "learns no styles in the background (STYLEFILL_BACKGROUND_STYLES=0)"
                            ).status()
        return LEARNER.ensure(index, network(backbone, None)).status()


def _job_routes(router: APIRouter, queue: JobQueue, background_styles: bool) -> None:
    @router.post("/jobs", status_code=202, response_model=JobCreated)
    def create_job(req: JobRequest) -> dict:
        op = OPERATIONS[req.kind]
        try:
            params = PARAMS[op.name].model_validate(req.params)
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("body", "params", *e["loc"])} for e in exc.errors()]) from None
        request = _request(op, params.model_dump(exclude_unset=True, by_alias=True), req)
        job = queue.submit(op.name, partial(op.run, request))
        if background_styles and op.name == "insert" and request.style is None:
            # The class the user chose goes before prefetched ones; it learns after the job.
            LEARNER.first(LEARNER.ensure(request.index, network(request.backbone, None)))
        status = queue.status(job)
        return {k: status[k] for k in ("id", "state", "position")}

    @router.get("/jobs/{job_id}", response_model=JobStatus)
    def job_status(job_id: str) -> dict:
        return queue.status(queue.get(job_id))

    @router.get("/jobs/{job_id}/preview.png", response_class=Response)
    def job_preview(job_id: str) -> Response:
        png = queue.get(job_id).preview_png()
        if png is None:
            raise HTTPException(404, f"job {job_id} has no preview yet")
        return Response(png, media_type="image/png")

    @router.post("/jobs/{job_id}/cancel", response_model=JobStatus)
    def job_cancel(job_id: str) -> dict:
        return queue.status(queue.cancel(job_id))

    @router.get("/jobs/{job_id}/result", response_model=JobResultOut)
    def job_result(job_id: str) -> dict:
        job = queue.get(job_id)
        status = queue.status(job)
        if status["state"] != DONE:
            why = {FAILED: f"failed: {status['message']}"}.get(
                status["state"], f"is {status['state']} ({status['stage']})")
            raise HTTPException(409, f"job {job_id} has no result: it {why}")
        shown, png = job.result_png()
        return {"offset": list(job.outcome.offset) if shown is not None else None,
                "size": list(shown.size) if shown is not None else None,
                "metrics": job.outcome.metrics,
                "png": base64.b64encode(png).decode("ascii") if png is not None else None}


def _request(op: Operation, params: dict, body: _Selection) -> OperationRequest:
    """The operation's request from its validated params and the body's image, mask or rect."""
    kinds = op.request.input_kinds()
    values = dict(params)
    if "image" in kinds:
        if body.image is not None:
            values["image"] = decode_image(_b64("image", body.image))
        elif "image" in op.request.input_kinds(required=True):
            _missing_image()
    elif body.image is not None or body.mask is not None or body.rect is not None:
        name = "image" if body.image is not None else "mask" if body.mask is not None else "rect"
        raise InputError(f"{op.name} takes no '{name}'")
    given = body.mask is not None or body.rect is not None
    if "selection" in kinds and (given or "selection" in op.request.input_kinds(required=True)):
        mask = _b64("mask", body.mask) if body.mask is not None else None
        values["selection"] = selection_mask(values["image"].size, mask, body.rect)
    elif given:
        raise InputError(f"{op.name} works on the whole image; it takes no mask or rect")
    return op.request.model_validate(values)


def _missing_image() -> Image.Image:
    raise InputError("an 'image' is needed (base64 of a PNG or JPEG)")


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: any free one)."""
    try:
        family, _, _, _, address = socket.getaddrinfo(host.strip("[]"), port, flags=socket.AI_PASSIVE,
                                                      type=socket.SOCK_STREAM)[0]
        return socket.create_server(address[:2], family=family)
    except OSError as exc:
        raise StylefillError(f"cannot listen on {host} port {port}: {exc.strerror or exc}; "
                             "is another engine running? (--port another one)") from None


def serve(host: str | None, port: int = DEFAULT_PORT) -> None:
    """Run the engine until interrupted. Loopback unless `host` says otherwise, with a warning.

    The socket is bound before the address is printed, so `--port 0` prints the real port.
    """
    import uvicorn  # only the server needs it

    bind = host or DEFAULT_HOST
    if host is not None and not _is_loopback(host):
        print(f"stylefill: warning: listening on {host}, not only on this machine: anyone who "
              "can reach it and learns the token (sent unencrypted) can use the engine",
              file=sys.stderr)
    # STYLEFILL_BACKGROUND_STYLES=0: no background style learning (the test suite: it would
    # compete with the tests for the CPU).
    app = create_app(ensure_token(),
                     background_styles=os.environ.get("STYLEFILL_BACKGROUND_STYLES", "1") != "0")
    sock = listen(bind, port)
    print(f"stylefill engine on {bind} port {sock.getsockname()[1]}; token in {token_path()}",
          file=sys.stderr, flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="info", access_log=False)).run(sockets=[sock])


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


def _b64(field: str, text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{field}: not valid base64; send the encoded file's bytes as base64"
                         ) from None


def _style_set(cls: str, backbone: str) -> styles.StyleSet:
    """The learned styles of a class; 404 when there are none (or they cannot be read)."""
    check_name(backbone)
    _, name = resolve_class(cls)
    try:
        return styles.load(name, backbone)
    except InputError as exc:
        raise HTTPException(404, str(exc)) from None
