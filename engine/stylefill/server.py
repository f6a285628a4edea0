"""The engine's HTTP server (docs/protocol.md): what the GIMP plug-in talks to.

Routes only translate: JSON and base64 images in, the operations' requests (stylefill.
operations) run at once or through the job queue, JSON out. The job kinds, their `params` and
the immediate routes are generated from the operations' registry. Before anything reads a
request, `_Gate` checks its Host (DNS rebinding) and its token (every route but health and the
schema); immediate routes and job inputs take one of a few slots; paths in requests must lie in
the allowed folders (stylefill.folders). Every bad input is answered with a 4xx and a `detail`
a user can act on.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import json
import os
import re
import secrets
import socket
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, create_model
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import __version__, styles
from .backbones import BACKBONES, DEFAULT_BACKBONE, check_name
from .backbones import info as backbone_info
from .classes import resolve_class
from .config import DEFAULT_HOST, DEFAULT_PORT, allowed_folders, ensure_token, is_loopback, token_path
from .errors import InputError, StylefillError
from .folders import Folders
from .images import decode_image, selection_mask
from .jobs import DONE, FAILED, JobQueue, JobStore, QueueFull, UnknownJob
from .openmp import releasing
from .operations import OPERATIONS, Operation
from .operations import Request as OperationRequest
from .operations.base import FieldsError, OnEngine, network
from .paths import models_dir
from .progress import Cancel, Progress
from .style_learning import LEARNER, OFF, Learning

API_VERSION = 1
MAX_BODY = 256 * 1024 * 1024  # a 64-megapixel PNG in base64 fits with room to spare
# Requests computed outside the job queue at once (suggest, classify, decoding a job's images),
# and how long one more waits for a slot before a 429: a suggest of a 64-megapixel photo
# decodes about 0.3 GB for a moment, so a burst of them must not run side by side.
SLOTS = 2
SLOT_WAIT_S = 10.0


# Requests. Unknown fields are refused so a typo ("clas") is an error, not a silent default;
# types are strict (no `true` for a number, no "5" for 5), as JSON has them.

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Selection(_Strict):
    image: str | None = Field(None, description="base64 of an encoded image (PNG recommended)")
    mask: str | None = Field(None, description="base64 PNG of the image's size; non-zero (or "
                             "alpha) = selected")
    rect: tuple[StrictInt, StrictInt, StrictInt, StrictInt] | None = Field(
        None, strict=False, description="[x, y, w, h] instead of a mask")  # a JSON list


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


# The schema's security scheme; _Gate checks the token before a route is chosen.
BEARER = HTTPBearer(auto_error=False, description="the token file in the engine's config dir "
                    "(see `stylefill serve`)")


def create_app(token: str, *, max_queued: int = 4, max_body: int = MAX_BODY,
               background_styles: bool = True, host: str = DEFAULT_HOST,
               folders: Sequence[str | Path] | None = None, slots: int = SLOTS,
               slot_wait: float = SLOT_WAIT_S, jobs: JobStore | None = None) -> FastAPI:
    """The engine as an ASGI app: one CPU job queue, `token` required on /v1 routes but health.

    `host` is the address it is bound to (the Host requests may name besides loopback ones);
    `folders` those requests may name paths in (default: config.allowed_folders for `host`).
    `slots` requests compute outside the queue at once; one more waits `slot_wait` s, then 429.
    With `background_styles`, an insert in "any style" of a class without styles starts that
    class's data-free styles in the background (for the next insert; style_learning).
    `jobs` replaces the job queue of this process (cluster.serve: a store shared by replicas)."""
    queue = jobs if jobs is not None else JobQueue(max_queued=max_queued)
    inside = Folders(allowed_folders(host) if folders is None else folders, also=[models_dir()])
    busy = _Slots(slots, slot_wait)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        queue.start()
        yield
        queue.close()
        busy.close()
        LEARNER.close()

    app = FastAPI(title="Stylefill engine", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    app.add_middleware(_Gate, token=token, hosts=HostCheck(host), limit=max_body)
    _error_handlers(app, inside)

    @app.get("/v1/health", response_model=Health)
    def health() -> dict:
        return {"status": "ok", "name": "stylefill", "version": __version__, "api": API_VERSION}

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(BEARER)], route_class=_JsonRoute)

    @v1.get("/backbones", response_model=Backbones)
    def backbones() -> dict:
        return {"default": DEFAULT_BACKBONE, "backbones": [backbone_info(n) for n in BACKBONES]}

    for name in BODIES:
        _immediate_route(v1, OPERATIONS[name], busy)
    _style_routes(v1, background_styles, inside)
    _job_routes(v1, queue, background_styles, busy, inside)
    app.include_router(v1)
    return app


def _immediate_route(router: APIRouter, op: Operation, busy: _Slots) -> None:
    """POST /v1/<name>: the operation at once, beside any job (a few forward passes), in a slot."""

    def compute(body: Any) -> dict:
        params = body.model_dump(exclude={"image", "mask", "rect"}, exclude_unset=True,
                                 by_alias=True)
        return op.run(_request(op, params, body), None, None).metrics

    async def handler(body: Any) -> dict:
        return await busy.run(compute, body)

    handler.__annotations__ = {"body": BODIES[op.name], "return": dict}
    router.post(f"/{op.name}", name=op.name, description=op.request.__doc__)(handler)


def _style_routes(router: APIRouter, background_styles: bool, inside: Folders) -> None:
    @router.get("/styles/{cls}")
    def styles_list(cls: str, backbone: str = DEFAULT_BACKBONE) -> dict:
        return inside.shown(_style_set(cls, backbone).listing())

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
        return inside.shown(LEARNER.ensure(index, network(backbone, None)).status(),
)


def _job_routes(router: APIRouter, queue: JobStore, background_styles: bool, busy: _Slots,
                inside: Folders) -> None:
    def submit(req: JobRequest) -> dict:
        op = OPERATIONS[req.kind]
        try:
            params = PARAMS[op.name].model_validate(req.params)
        except ValidationError as exc:
            raise _invalid(exc, "params") from None
        values = params.model_dump(exclude_unset=True, by_alias=True)
        paths = _engine_paths(op, values, inside)
        request = _request(op, {**values, **paths}, req)
        job = queue.submit(op.name, partial(_run_inside, op, request, inside, paths))
        if background_styles and op.name == "insert" and request.style is None:
            # The class the user chose goes before prefetched ones; it learns after the job.
            LEARNER.first(LEARNER.ensure(request.index, network(request.backbone, None)))
        status = queue.status(job)
        return {k: status[k] for k in ("id", "state", "position")}

    @router.post("/jobs", status_code=202, response_model=JobCreated)
    async def create_job(req: JobRequest) -> dict:
        return await busy.run(submit, req)  # decoding its images in a slot

    @router.get("/jobs/{job_id}", response_model=JobStatus)
    def job_status(job_id: str) -> dict:
        status = queue.status(queue.get(job_id))
        return {**status, **{k: inside.show(status[k])
                             for k in ("stage", "message") if status[k]}}

    @router.get("/jobs/{job_id}/preview.png", response_class=Response)
    def job_preview(job_id: str) -> Response:
        png = queue.get(job_id).preview_png()
        if png is None:
            raise HTTPException(404, f"job {job_id} has no preview yet")
        return Response(png, media_type="image/png")

    @router.post("/jobs/{job_id}/cancel", response_model=JobStatus)
    def job_cancel(job_id: str) -> dict:
        return job_status(queue.cancel(job_id).id)

    @router.get("/jobs/{job_id}/result", response_model=JobResultOut)
    def job_result(job_id: str) -> dict:
        job = queue.get(job_id)
        status = queue.status(job)
        if status["state"] != DONE:
            why = {FAILED: f"failed: {status['message']}"}.get(
                status["state"], f"is {status['state']} ({status['stage']})")
            raise HTTPException(409, f"job {job_id} has no result: it {why}")
        result = job.result()
        png = result["png"]
        return {"offset": result["offset"] and list(result["offset"]),
                "size": result["size"] and list(result["size"]),
                "metrics": inside.shown(result["metrics"]),
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
    try:
        return op.request.model_validate(values)
    except ValidationError as exc:
        raise _invalid(exc, "params") from None


def _invalid(exc: ValidationError, *where: str) -> RequestValidationError:
    """pydantic's errors as the body's (422), located at `where` in it."""
    return RequestValidationError([{**e, "loc": ("body", *where, *e["loc"])} for e in exc.errors()])


def _engine_paths(op: Operation, params: dict, inside: Folders) -> dict[str, str | list[str]]:
    """The request's paths on the engine's machine (fields marked OnEngine, defaults included),
    as real paths inside the allowed folders; relative ones start at the first folder."""
    found: dict[str, str | list[str]] = {}
    for name, info in op.request.option_fields().items():
        marker = next((m for m in info.metadata if isinstance(m, OnEngine)), None)
        key = info.alias or name
        value = params.get(key, info.get_default(call_default_factory=True))
        if marker is None or not value:
            continue
        resolve = partial(inside.resolve, label=key, write=marker.write)
        found[key] = ([str(resolve(v)) for v in value] if isinstance(value, list)
                      else str(resolve(value)))
    return found


def _run_inside(op: Operation, request: OperationRequest, inside: Folders,
                paths: dict[str, str | list[str]], progress: Progress | None,
                cancel: Cancel | None):
    """Run a job whose folders hold no link out of the allowed folders (checked as it starts,
    since the readers follow links to files)."""
    for key, value in paths.items():
        for path in value if isinstance(value, list) else [value]:
            if os.path.isdir(path):
                inside.check_tree(Path(path), key, cancel)
    return op.run(request, progress, cancel)


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


def serve(host: str | None, port: int = DEFAULT_PORT, folders: Sequence[str] | None = None) -> None:
    """Run the engine until interrupted. Loopback unless `host` says otherwise, with a warning;
    requests may name paths in `folders` (default: config.allowed_folders).

    The socket is bound before the address is printed, so `--port 0` prints the real port.
    """
    import uvicorn  # only the server needs it

    bind = host or DEFAULT_HOST
    warn_if_open(host)
    folders = allowed_folders(bind, folders)
    # STYLEFILL_BACKGROUND_STYLES=0: no background style learning (the test suite: it would
    # compete with the tests for the CPU).
    app = create_app(ensure_token(), host=bind, folders=folders,
                     background_styles=os.environ.get("STYLEFILL_BACKGROUND_STYLES", "1") != "0")
    sock = listen(bind, port)
    print(f"stylefill engine on {bind} port {sock.getsockname()[1]}; token in {token_path()}",
          file=sys.stderr)
    announce_folders(folders)
    uvicorn.Server(uvicorn.Config(app, log_level="info", access_log=False)).run(sockets=[sock])


def warn_if_open(host: str | None) -> None:
    """The warning of an engine bound to an address other machines can reach."""
    if host is not None and not is_loopback(host):
        print(f"stylefill: warning: listening on {host}, not only on this machine: anyone who "
              "can reach it and learns the token (sent unencrypted) can use the engine",
              file=sys.stderr)


def announce_folders(folders: Sequence[str]) -> None:
    print(f"stylefill: requests may name files in: {', '.join(folders) or 'no folder'}",
          file=sys.stderr, flush=True)


class HostCheck:
    """Which Host a request may name: a loopback name or address, or the address the engine is
    bound to (when bound to all addresses, any IP address). A page that reaches the engine by
    DNS rebinding names its own domain, so it is refused before anything else happens."""

    HOST = re.compile(r"(\[[0-9a-fA-F:.]+\]|[^\s:\[\]@/]+)(:\d{1,5})?")

    def __init__(self, bound: str):
        self.bound = bound.strip("[]").lower()

    def __call__(self, header: str) -> bool:
        found = self.HOST.fullmatch(header)
        if found is None:
            return False
        name = found.group(1).strip("[]").lower()
        if name == self.bound or is_loopback(name):
            return True
        return self.bound in ("0.0.0.0", "::") and _is_address(name)


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class _Gate:
    """Before anything reads a request: its Host must name this engine (else 421), its token
    must be right on every path but health and the schema (else 401: no body is read or parsed
    for a client without the token), its body must stay within `limit` bytes (else 413)."""

    OPEN = frozenset({"/v1/health", "/openapi.json"})
    CHALLENGE = {"WWW-Authenticate": "Bearer"}

    def __init__(self, app: Callable, token: str, hosts: HostCheck, limit: int):
        self.app, self.token, self.hosts, self.limit = app, token.encode(), hosts, limit

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope["path"], Headers(scope=scope))
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, self._counted(receive), send)

    def _refusal(self, path: str, headers: Headers) -> Response | None:
        host = headers.get("host", "")
        if not self.hosts(host):
            return JSONResponse({"detail": f"Host '{host[:100]}' does not name this engine: use "
                                 "its loopback address (http://127.0.0.1:PORT) or the address "
                                 "it listens on"}, status_code=421)
        if path not in self.OPEN:
            scheme, _, token = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return JSONResponse({"detail": "missing token: send 'Authorization: Bearer "
                                     "<token>' (the engine's token file, see docs/protocol.md)"},
                                    status_code=401, headers=self.CHALLENGE)
            if not secrets.compare_digest(token.strip().encode(), self.token):
                return JSONResponse({"detail": "wrong token: send the one in the engine's token "
                                     "file (see docs/protocol.md)"}, status_code=401,
                                    headers=self.CHALLENGE)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            return JSONResponse({"detail": self._too_large()}, status_code=413)
        return None

    def _counted(self, receive: Callable) -> Callable:
        """`receive` that stops a body (chunked, or longer than declared) past the limit."""
        total = 0

        async def counted() -> dict:
            nonlocal total
            message = await receive()
            total += len(message.get("body", b""))
            if total > self.limit:
                raise HTTPException(413, self._too_large())
            return message

        return counted

    def _too_large(self) -> str:
        return f"request body is larger than the limit of {self.limit / 2**20:g} MiB"


class _Slots:
    """`count` threads compute outside the job queue (suggest, classify, decoding a job's
    images); one more request waits up to `wait` s for one, then is told the engine is busy
    (429). Always the same threads, so memory one computation frees is reused by the next
    (each thread allocates from its own malloc arena; 40 pool threads kept 40 of them). Each
    hands back its OpenMP helpers when done, so a running job keeps its speed (openmp)."""

    def __init__(self, count: int, wait: float):
        self.count, self.wait = count, wait
        self._free = asyncio.Semaphore(count)
        self._threads = ThreadPoolExecutor(count, thread_name_prefix="stylefill-slot")

    async def run(self, work: Callable[..., Any], *args: Any) -> Any:
        try:
            await asyncio.wait_for(self._free.acquire(), self.wait)
        except asyncio.TimeoutError:
            raise QueueFull(f"the engine is busy: {self.count} requests are being computed; "
                            "try again shortly") from None
        try:
            return await asyncio.get_running_loop().run_in_executor(self._threads,
                                                                    releasing(work), *args)
        finally:
            self._free.release()

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)


class _ShallowJson(Request):
    """A request body that is JSON too deeply nested (or with a number too long) for the parser
    is invalid JSON like any other (FastAPI would answer a bare 400)."""

    async def json(self) -> Any:
        try:
            return await super().json()
        except json.JSONDecodeError:
            raise
        except (RecursionError, ValueError):
            raise json.JSONDecodeError("nested too deeply or a number too long", "", 0) from None


class _JsonRoute(APIRoute):
    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            return await handler(_ShallowJson(request.scope, request.receive))

        return route


def _error_handlers(app: FastAPI, inside: Folders) -> None:
    """Every error as {"detail": "<one message>"}, with the status the protocol names; paths of
    the engine's machine shown relative to their folder."""

    def plain(status: int) -> Callable:
        async def handler(_request: Request, exc: Exception) -> JSONResponse:
            return JSONResponse({"detail": inside.show(str(exc))},
                                status_code=status)

        return handler

    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": inside.show(str(exc.detail))},
                            status_code=exc.status_code, headers=exc.headers)

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(InputError, plain(400))
    app.add_exception_handler(FieldsError, plain(422))
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
