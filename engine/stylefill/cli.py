"""`stylefill` command line. Every operation's subcommand is generated from its request.

A flag is a request field (`--dropout-seed` is `dropout_seed`, `--class` is `class`), with the
request's default; the inputs are files (the photo, `--mask FILE` or `--rect x,y,w,h`); `-o`,
`--layer`, `--json`, `-q` and `--weights` are options of this process, not of the operation.
Errors a user can fix print one line and exit with 2; nothing is computed here.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from tqdm import tqdm

from . import __version__, cluster, patchdb, styles
from .backbones import BACKBONES, DEFAULT_BACKBONE, use_weights
from .backbones import info as backbone_info
from .cluster import learn as class_runs
from .cluster import patchdb as shard_runs
from .config import DEFAULT_PORT
from .errors import Cancelled, InputError, StylefillError
from .images import load_image, save_image, selection_mask
from .operations import OPERATIONS, Operation, Outcome, Request, run
from .operations.base import Cli
from .paths import atomic_write


def _write_json(path: str | None, data: dict) -> None:
    if not path:
        return
    text = json.dumps(data, indent=2)
    try:
        atomic_write(Path(path), lambda tmp: tmp.write_text(text + "\n"))
    except OSError as exc:
        raise StylefillError(f"{path}: cannot write ({exc.strerror or exc})") from None


@contextmanager
def _bar(desc: str, quiet: bool):
    """A progress bar in percent, the stage as its postfix (redrawn at tqdm's own interval)."""
    bar = tqdm(total=100, desc=desc, unit="%", disable=quiet, leave=False, file=sys.stderr)

    def progress(fraction: float, stage: str, _preview: object) -> None:
        bar.set_postfix_str(stage[:60], refresh=False)
        bar.update(round(100 * fraction) - bar.n)

    try:
        yield progress
    finally:
        bar.close()


# --------------------------------------------------------------------- options from a request

def _plain(annotation: Any) -> Any:
    """The annotation without Annotated, None and Strict wrappers."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        members = [_plain(a) for a in get_args(annotation) if a is not type(None)]
        return str if len(members) > 1 else members[0]  # a class: a name or an index
    return annotation


def _list_of(kind: type) -> Callable[[str], list]:
    def parse(text: str) -> list:
        try:
            return [kind(v) for v in text.split(",")]
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}': use comma-separated values") from None

    return parse


def _help(info: FieldInfo) -> str:
    text = info.description or ""
    default = info.get_default(call_default_factory=True)
    if default not in (None, PydanticUndefined, False, []) and "(default" not in text:
        shown = ",".join(map(str, default)) if isinstance(default, list) else default
        text += f" (default {shown})"
    return text


def _add_option(parser: argparse.ArgumentParser, name: str, info: FieldInfo) -> None:
    """One request field as an argparse argument whose dest is the field's name."""
    cli = next((m for m in info.metadata if isinstance(m, Cli)), Cli())
    flag = "--" + (info.alias or name).replace("_", "-")
    kind = _plain(info.annotation)
    kw: dict[str, Any] = {"help": _help(info)}
    if kind is bool:  # --flag, or --flag/--no-flag when it is on by default
        on = info.default is not False  # on, or decided later (None): both flags
        parser.add_argument(flag, *cli.aliases, dest=name, default=argparse.SUPPRESS,
                            action=argparse.BooleanOptionalAction if on else "store_true",
                            help=info.description)
        return
    if get_origin(kind) is Literal:
        kw["choices"] = list(get_args(kind))
    elif get_origin(kind) is list:
        item = get_args(kind)[0]
        kw["type"] = str if cli.positional else _list_of(item)
        if cli.positional:
            kw["nargs"] = "+" if info.is_required() else "*"
    else:
        kw["type"] = kind
    if cli.metavar:
        kw["metavar"] = cli.metavar
    if cli.positional:
        parser.add_argument(name, **kw)
    else:
        parser.add_argument(flag, *cli.aliases, dest=name, required=info.is_required(),
                            default=argparse.SUPPRESS, **kw)


def _add_inputs(parser: argparse.ArgumentParser, inputs: dict[str, str],
                required: dict[str, str]) -> None:
    """The image (positional) where every request needs one; --mask/--rect for a selection,
    "optional" where a request may have none."""
    if "image" in required:
        parser.add_argument("image", metavar="PHOTO" if "selection" in required else "IMAGE")
    if "selection" in inputs:
        optional = "" if "selection" in required else " (optional)"
        parser.add_argument("--mask", metavar="MASK.png", help="the selection: PNG of the photo's "
                            f"size, non-zero (or alpha) = selected{optional}")
        parser.add_argument("--rect", metavar="x,y,w,h", help=f"the selection as a rectangle{optional}")


def _add_outputs(parser: argparse.ArgumentParser, op: Operation) -> None:
    if op.makes == "image":
        parser.add_argument("-o", "--output", required=True, help="output image (PNG)")
    elif op.makes == "edit":
        parser.add_argument("-o", "--output", required=True,
                            help="the whole photo with the result (PNG)")
        parser.add_argument("--layer", dest="layer_file", metavar="LAYER.png",
                            help="also write the selection's bounding box as RGBA (what the GIMP "
                            "plug-in pastes)")
    if "backbone" in op.request.option_fields():
        parser.add_argument("--weights", metavar="FILE",
                            help="local state dict of the backbone to use (weights_only)")
    parser.add_argument("--json", metavar="PATH", help="write the metrics as JSON")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _add_operation(sub: Any, groups: dict[str, Any], op: Operation) -> None:
    parent = sub if len(op.words) == 1 else groups[op.words[0]]
    parser = parent.add_parser(op.words[-1], help=op.help, description=op.request.__doc__)
    _add_inputs(parser, op.request.input_kinds(), op.request.input_kinds(required=True))
    fields = op.request.option_fields()
    for name in sorted(fields, key=lambda n: not fields[n].is_required()):  # required ones first
        _add_option(parser, name, fields[name])
    _add_outputs(parser, op)
    parser.set_defaults(func=lambda args: _run_operation(op, args))


# ------------------------------------------------------------------------------- running one

def _rect(text: str) -> tuple[int, int, int, int]:
    try:
        rect = tuple(int(v) for v in text.split(","))
        if len(rect) != 4:
            raise ValueError
    except ValueError:
        raise InputError(f"--rect '{text}': use x,y,w,h in pixels") from None
    return rect


def _mask_bytes(path: str | None) -> bytes | None:
    if path is None:
        return None
    if not Path(path).is_file():
        raise InputError(f"{path}: no such mask file")
    return Path(path).read_bytes()


def _flag(op: Operation, loc: tuple) -> str:
    fields = {info.alias or name: name for name, info in op.request.model_fields.items()}
    key = str(loc[0]) if loc else ""
    return "--" + fields.get(key, key).replace("_", "-") if key else "the request"


def request_from_args(op: Operation, args: argparse.Namespace) -> Request:
    """The operation's request from parsed arguments (inputs read from their files)."""
    values = {name: getattr(args, name) for name in op.request.option_fields() if hasattr(args, name)}
    inputs = op.request.input_kinds(required=True)
    if "image" in inputs:
        values["image"] = load_image(args.image)
    if "selection" in inputs or getattr(args, "mask", None) or getattr(args, "rect", None):
        values["selection"] = selection_mask(values["image"].size, _mask_bytes(args.mask),
                                             _rect(args.rect) if args.rect else None)
    try:
        return op.request.model_validate(values)
    except ValidationError as exc:
        errs = "; ".join(f"{_flag(op, e['loc'])}: {e['msg']}" for e in exc.errors())
        raise InputError(errs) from None


def _save(op: Operation, outcome: Outcome, args: argparse.Namespace) -> dict[str, str]:
    written = {}
    if op.makes in ("image", "edit"):
        save_image(outcome.image, args.output)
        written["output"] = str(args.output)
    if op.makes == "edit" and args.layer_file:
        save_image(outcome.layer, args.layer_file)
        written["layer_file"] = args.layer_file
    return written


def _run_operation(op: Operation, args: argparse.Namespace) -> dict:
    request = request_from_args(op, args)
    weights = getattr(args, "weights", None)
    with use_weights(getattr(request, "backbone", DEFAULT_BACKBONE), weights), \
            _bar(op.words[-1], args.quiet) as progress:
        outcome = run(request, progress)
    written = _save(op, outcome, args)
    if outcome.summary:
        print(f"{args.output}: {outcome.summary}" if "output" in written else outcome.summary)
    return {**outcome.metrics, **written, **({"files": outcome.files} if outcome.files else {})}


# ------------------------------------------------ styles of many classes on Ray (cluster/)

RAY_ONLY = {"all_classes": False, "classes_file": None, "force": False, "compare": True,
            "class_threads": 1}


def _add_class_runs(parser: argparse.ArgumentParser, op: Operation) -> None:
    """`styles learn` also takes several classes, --all or --classes FILE, each class a Ray task."""
    cls = next(a for a in parser._actions if a.dest == "cls")
    cls.nargs, cls.help = "*", "the class (name or index 0-999); with --ray, one or more"
    g = parser.add_argument_group("many classes, each a Ray task (docs/scale.md)")
    g.add_argument("--ray", metavar="ADDRESS", help="learn each class's data-free styles as a Ray "
                   "task: `local` (a Ray instance on this machine) or a cluster's address; needs "
                   "the ray extra (install/install.sh --with-ray)")
    g.add_argument("--all", dest="all_classes", action="store_true", help="every ImageNet class")
    g.add_argument("--classes", dest="classes_file", metavar="FILE", help="the classes a file "
                   "lists, one a line (names or indices; # comments)")
    g.add_argument("--force", action="store_true", help="learn classes that have styles again "
                   "(default: skip them, so a stopped run resumes)")
    g.add_argument("--compare", action=argparse.BooleanOptionalAction, default=True,
                   help="learn the first class in this process before the others go to Ray, to "
                   "report the speed-up over one process (default on)")
    g.add_argument("--threads-per-class", dest="class_threads", type=int, default=1, metavar="N",
                   help="torch threads (and Ray CPUs) of each class's task (default 1; a "
                   "sequential run gives the same styles on the same thread count)")
    parser.set_defaults(func=lambda args: _learn_styles(op, args))


def _one_class(args: argparse.Namespace) -> None:
    """Without --ray, `styles learn` learns one class, as it always has."""
    ray_only = [k for k, default in RAY_ONLY.items() if getattr(args, k) != default]
    if ray_only or len(args.cls) > 1:
        raise InputError("several classes, --all, --classes, --force, --no-compare and "
                         "--threads-per-class go with --ray ADDRESS (`--ray local` uses this "
                         "machine's cores)")
    if not args.cls:
        raise InputError("name the class to learn (CLASS)")
    args.cls = args.cls[0]


def _class_jobs(op: Operation, args: argparse.Namespace) -> list[class_runs.ClassJob]:
    if getattr(args, "folder", None) is not None or getattr(args, "weights", None):
        raise InputError("--ray learns data-free styles with the backbone's own weights: give "
                         "--data-free (not --from FOLDER or --weights)")
    if args.class_threads < 1:
        raise InputError("--threads-per-class must be at least 1")
    names = list(args.cls) + (class_runs.all_classes() if args.all_classes else []) + (
        class_runs.read_classes(args.classes_file) if args.classes_file else [])
    if not names:
        raise InputError("name the classes: CLASS..., --all or --classes FILE")
    requests = [request_from_args(op, argparse.Namespace(**{**vars(args), "cls": name}))
                for name in names]
    return class_runs.jobs_for(requests, threads=args.class_threads)


def _learn_styles(op: Operation, args: argparse.Namespace) -> dict:
    if args.ray is None:
        _one_class(args)
        return _run_operation(op, args)
    cluster.require_ray()
    todo, skipped = class_runs.pending(_class_jobs(op, args), args.force)
    if skipped:
        print(f"{len(skipped)} of {len(todo) + len(skipped)} classes have styles already: skipped "
              "(--force learns them again)")
    with tqdm(total=len(todo), desc="classes", unit="class", disable=args.quiet or not todo,
              file=sys.stderr) as bar:
        def done(name: str, ok: bool) -> None:
            bar.set_postfix_str(f"{name}{'' if ok else ' FAILED'}", refresh=False)
            bar.update(1)

        result = class_runs.learn_styles(todo, args.ray, compare=args.compare, done=done)
    print(result.summary())
    if result.failed:
        raise StylefillError(f"{len(result.failed)} class(es) failed (listed above); the same "
                             "command learns them again and skips the others")
    return {**result.metrics(), "skipped": [j.name for j in skipped]}


# ------------------------------------------ a patch database from shards on Ray (cluster/)

def _add_shard_runs(parser: argparse.ArgumentParser, op: Operation) -> None:
    """`patchdb build` also extracts photo shards as Ray tasks and merges them."""
    g = parser.add_argument_group("photo shards, each a Ray task (docs/scale.md)")
    g.add_argument("--ray", metavar="ADDRESS", help="extract the photos' pairs in shards, each a "
                   "Ray task, and merge them into one database: `local` (a Ray instance on this "
                   "machine) or a cluster's address; needs the ray extra (install/install.sh "
                   "--with-ray)")
    g.add_argument("--shards", type=int, metavar="N", help="how many shards (default: one per "
                   "Ray CPU)")
    g.add_argument("--compare", action="store_true", help="extract the first shard in this "
                   "process before the others go to Ray, to report the speed-up over one process")
    parser.set_defaults(func=lambda args: _build_sharded(op, args))


def _build_sharded(op: Operation, args: argparse.Namespace) -> dict:
    if args.ray is None:
        if args.shards is not None or args.compare:
            raise InputError("--shards and --compare go with --ray ADDRESS (`--ray local` uses "
                             "this machine's cores)")
        return _run_operation(op, args)
    cluster.require_ray()
    if args.weights:
        raise InputError("--ray builds with the backbone's own weights (not --weights)")
    request = request_from_args(op, args)
    with tqdm(total=1, desc="photos", unit="photo", disable=args.quiet, file=sys.stderr,
              bar_format="{l_bar}{bar}| {n:.1f}/{total_fmt} [{elapsed}<{remaining}]") as bar:
        def done(photos: float, total: int) -> None:
            bar.total, bar.n = total, photos
            bar.refresh()

        result = shard_runs.build(request, args.ray, args.shards, compare=args.compare, done=done)
    print(result.summary())
    return result.metrics()


# ------------------------------------------------------------------ listings and the server

def cmd_styles_list(args: argparse.Namespace) -> dict:
    if args.cls is None:
        names = styles.list_classes(args.backbone)
        print("\n".join(names) if names else
              f"no styles learned for {args.backbone} yet (styles learn CLASS --data-free)")
        return {"backbone": args.backbone, "classes": names}
    listing = styles.load(args.cls, args.backbone).listing()
    for s in listing["styles"]:   # farthest-first: the first ones differ most
        print(f"style {s['id']}: weight {s['weight']:.2f}  {s['preview']}  ({len(s['images'])} images)"
              f"{_looks(s)}")
    if len(listing["styles"]) > 1 and listing["distinct"] == 1:
        print(f"these {len(listing['styles'])} styles look alike (their previews differ less "
              "than a glance shows)")
    return listing


def _looks(s: dict) -> str:
    if s["nearest"] is None:
        return ""
    alike = f"≈ style {s['looks_like']}, " if s["looks_like"] is not None else ""
    return f"  {alike}nearest style {s['nearest']} at {s['distance']:.2f}"


def cmd_patchdb_list(args: argparse.Namespace) -> dict:
    dbs = patchdb.list_dbs(None if args.all else args.backbone)
    for m in dbs:
        if m.get("damaged"):
            print(f"{m['backbone']:20s} {m['name']:20s} damaged: rebuild it with patchdb build")
        else:
            print(f"{m['backbone']:20s} {m['name']:20s} {m['count']:9d} pairs  {m['index']}")
    if not dbs:
        print("no patch databases yet (the default one is built on first use)")
    return {"databases": dbs}


def cmd_backbones(args: argparse.Namespace) -> dict:
    found = [backbone_info(name) for name in BACKBONES]
    for b in found:
        weights = "weights on disk" if b["weights_available"] else "weights downloaded on first use"
        print(f"{b['name']:20s} {b['input_size']} px, {weights}\n  layers: {', '.join(b['layers'])}")
    return {"default": DEFAULT_BACKBONE, "backbones": found}


def cmd_serve(args: argparse.Namespace) -> dict:
    if args.ray is not None:
        cluster.require_ray()
        from .cluster.serve import serve as serve_on_ray  # Ray Serve only when asked for

        serve_on_ray(args.ray, args.replicas, host=args.host, port=args.port, folders=args.folders)
        return {}
    if args.replicas is not None:
        raise InputError("--replicas goes with --ray ADDRESS (`--ray local` runs the replicas "
                         "on this machine)")
    from .server import serve  # the web stack only when serving

    serve(host=args.host, port=args.port, folders=args.folders)  # host None = 127.0.0.1
    return {}


def _listing_parser(parent: Any, name: str, helptext: str, func: Callable) -> argparse.ArgumentParser:
    p = parent.add_parser(name, help=helptext)
    p.add_argument("--backbone", default=DEFAULT_BACKBONE, choices=list(BACKBONES))
    p.add_argument("--json", metavar="PATH", help="write the listing as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="(nothing to hide: no progress)")
    p.set_defaults(func=func)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stylefill", description="Intra-class knowledge of ImageNet CNNs as editing tools.")
    parser.add_argument("--version", action="version", version=f"stylefill {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    groups = {
        "styles": sub.add_parser("styles", help="styles of a class: NMF topics of its fc7 "
                                 "features").add_subparsers(dest="styles_command", required=True),
        "patchdb": sub.add_parser("patchdb", help="patch databases (cell feature <-> centre "
                                  "patch)").add_subparsers(dest="patchdb_command", required=True),
        "eval": sub.add_parser("eval", help="the paper's evaluations on a folder of photos")
        .add_subparsers(dest="eval_command", required=True),
    }
    for op in OPERATIONS.values():
        _add_operation(sub, groups, op)
    _add_class_runs(groups["styles"].choices["learn"], OPERATIONS["learn_styles"])
    _add_shard_runs(groups["patchdb"].choices["build"], OPERATIONS["patchdb_build"])
    s = _listing_parser(groups["styles"], "list", "learned styles of a class (or the classes "
                        "that have some)", cmd_styles_list)
    s.add_argument("cls", metavar="CLASS", nargs="?")
    ls = _listing_parser(groups["patchdb"], "list", "list databases", cmd_patchdb_list)
    ls.add_argument("--all", action="store_true", help="all backbones")
    p = sub.add_parser("backbones", help="the networks, their input size and layers")
    p.add_argument("--json", metavar="PATH", help="write the list as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="(nothing to hide: no progress)")
    p.set_defaults(func=cmd_backbones)
    p = sub.add_parser("serve", help="run the HTTP engine the GIMP plug-in talks to")
    p.add_argument("--host", help="address to bind (default 127.0.0.1; others print a warning)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; "
                   "0: any free one, printed when bound)")
    p.add_argument("--folders", nargs="*", metavar="DIR", help="the only folders whose files "
                   "requests may name (learn styles from, rank, write to); default "
                   "$STYLEFILL_FOLDERS (':'-separated), else your home folder when listening on "
                   "loopback and none otherwise")
    g = p.add_argument_group("a shared engine on Ray Serve (docs/scale.md)")
    g.add_argument("--ray", metavar="ADDRESS", help="serve from Ray Serve replicas: `local` (a "
                   "Ray instance on this machine) or a cluster's address; needs the ray extra "
                   "(install/install.sh --with-ray)")
    g.add_argument("--replicas", type=int, metavar="N", help="job replicas, each running one job "
                   "at a time on one CPU (default: one per CPU of the Ray cluster)")
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        data = args.func(args)
        _write_json(getattr(args, "json", None), data)
    except (StylefillError, Cancelled) as exc:
        print(f"stylefill: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stylefill: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
