"""Evaluations: the paper's Table 1 on a folder of the user's photos, and how natural one
result is (its class evidence under the solver and the judge network, and photo statistics)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from .. import patchdb
from ..errors import InputError
from ..evaluation import (
    FIGURE_PHOTOS,
    METHODS,
    Run,
    figure_rows,
    judge_results,
    photos_in,
    table1,
)
from ..images import save_image
from ..judge import load_judge
from ..naturalness import naturalness
from ..optvis import recipes
from ..paths import atomic_write
from ..progress import Cancel, Progress, report, scaled
from .base import (
    PATH_CHARS,
    BackboneName,
    ClassRef,
    Cli,
    OnEngine,
    Operation,
    OptionalSelection,
    Outcome,
    Photo,
    Request,
    Seed,
    backbone_field,
    check_layer,
    iters_field,
    network,
)

WHITEN = {"both": (False, True), "off": (False,), "on": (True,)}


class Table1Request(Request):
    """Table 1: [8]+rand, [8]+[7] and ours (with and without whitening) on every photo of a
    folder; writes table1.md, table1.png and every result under images/."""

    folder: Annotated[str, Cli(positional=True, metavar="FOLDER"), OnEngine()] = Field(
        max_length=PATH_CHARS, description="the photos to invert (on the engine's machine); "
        "keep them out of the patch database")
    out: Annotated[str, Cli(aliases=("-o",), metavar="DIR"), OnEngine(write=True)] = Field(
        "table1", max_length=PATH_CHARS, description="folder for table1.md and table1.png")
    limit: int | None = Field(None, ge=1, le=1_000_000, description="only the first N photos "
                              "(name order)")
    whiten: Literal["both", "off", "on"] = Field("both", description="run each method without "
                                                 "colour whitening, with it, or both")
    database: str = Field(patchdb.AUTO, max_length=100, description="the patch database: auto (a "
                          "preset if built, else the embedded default), default, or a name")
    layer: str | None = Field(None, description="the layer inverted (default: the backbone's "
                              "last spatial map)")
    figure_rows: int = Field(FIGURE_PHOTOS, ge=1, le=50, description="photos shown in "
                             "table1.png (the first ones in name order)")
    figure: list[str] = Field([], max_length=50, description="instead, the photos shown in "
                              "table1.png: those whose file name contains one of these")
    iters: int = iters_field(recipes.InversionSettings.iters)
    seed: Seed = 0
    backbone: BackboneName = backbone_field()

    def check(self) -> None:
        self.layer = check_layer(self.backbone, self.layer)


def run_table1(req: Table1Request, progress: Progress | None, cancel: Cancel | None) -> Outcome:
    photos = photos_in(req.folder, req.limit)
    net = network(req.backbone, progress)
    db = patchdb.open_db(net, req.database, scaled(progress, 0.0, 0.0, "patch database: "))
    out = Path(req.out)
    out.mkdir(parents=True, exist_ok=True)
    setup = {"backbone": net.name, "database": db.meta["name"], "layer": req.layer,
             "iters": req.iters, "seed": req.seed, "whiten": req.whiten}
    journal = out / "runs.jsonl"
    names = {p.name for p in photos}
    done = [r for r in _resumed(journal, setup) if r.photo in names]  # this run's photos only

    def record(runs: list[Run]) -> None:
        with journal.open("a") as f:
            f.write("".join(json.dumps(r.__dict__) + "\n" for r in runs))

    table = table1(net, photos, out / "images", whiten=WHITEN[req.whiten], layer=req.layer,
                   seed=req.seed, db=db, settings=replace(recipes.InversionSettings(), iters=req.iters),
                   done=done, on_photo=record, progress=scaled(progress, 0.0, 0.98), cancel=cancel)
    judge_results(table, photos, out / "images", scaled(progress, 0.98, 1.0), cancel)
    table.figure_rows = figure_rows(net, db, table, photos, out / "images", req.figure,
                                    req.figure_rows)
    text = table.markdown()
    atomic_write(out / "table1.md", lambda tmp: Path(tmp).write_text(
        f"# Table 1 on {len(photos)} photos of {req.folder}\n\n{net.name}, layer "
        f"{req.layer}, database {db.meta['name']} ({len(db):,} pairs), "
        f"{req.iters} steps, seed {req.seed}\n\n{text}"))
    files = {"table": str(out / "table1.md")}
    if table.figure_rows:
        save_image(table.figure(), out / "table1.png")
        files["figure"] = str(out / "table1.png")
    runs = [{**r.__dict__, "judge": table.verdicts[k].__dict__ if k in table.verdicts else None}
            for r in table.runs for k in [(r.photo, r.method, r.whiten)]]
    return Outcome({"backbone": net.name, "database": db.meta["name"], "layer": req.layer,
                    "photos": len(photos), "runs": runs}, files=files, summary=text)


def _resumed(journal: Path, setup: dict) -> list[Run]:
    """The runs an earlier evaluation into the same folder finished with the same setup; a
    journal of another setup is an error (so two setups never mix in one table)."""
    if not journal.is_file():
        journal.write_text(json.dumps({"setup": setup}) + "\n")
        return []
    lines = journal.read_text().splitlines()
    if json.loads(lines[0]).get("setup") != setup:
        raise InputError(f"{journal} holds runs of another setup ({lines[0]}); choose another "
                         "--out folder or delete it")
    runs = []
    for line in lines[1:]:
        try:
            runs.append(Run(**json.loads(line)))
        except (ValueError, TypeError):
            break  # a line cut short by a crash
    per_photo = len(WHITEN[setup["whiten"]]) * len(METHODS)
    complete = {p for p in {r.photo for r in runs} if sum(r.photo == p for r in runs) == per_photo}
    return [r for r in runs if r.photo in complete]  # an incomplete photo is run again


TABLE1 = Operation("table1", Table1Request, run_table1,
                   "the paper's Table 1 on a folder of photos (markdown table and figure)",
                   command=("eval", "table1"))


class NaturalnessRequest(Request):
    """How natural a result is: the class probability under the solver's network and the judge
    (EfficientNet-Lite2), clean and after blur, resampling and JPEG, with photo statistics; for
    an edit give its selection (the context crop is judged, the fill measured beside the photo
    around it)."""

    image: Photo
    selection: OptionalSelection = None
    cls: Annotated[ClassRef, Cli(metavar="CLASS")] = Field(alias="class")
    report: Annotated[str | None, Cli(aliases=("-o",), metavar="REPORT.md"),
                      OnEngine(write=True)] = Field(
        None, max_length=PATH_CHARS, description="also write the Markdown table to this file")
    backbone: BackboneName = backbone_field()


def run_naturalness(req: NaturalnessRequest, progress: Progress | None,
                    cancel: Cancel | None) -> Outcome:
    net = network(req.backbone, progress)
    report(progress, 0.5, "judging")
    found = naturalness(net, load_judge(), req.image, req.index, req.selection)
    text = found.markdown()
    files = {}
    if req.report:
        atomic_write(Path(req.report), lambda tmp: Path(tmp).write_text(text))
        files["report"] = req.report
    return Outcome({"backbone": net.name, "judge_network": "efficientnet-lite2", **found.as_json()},
                   files=files, summary=text)


NATURALNESS = Operation("naturalness", NaturalnessRequest, run_naturalness,
                        "how natural a result is: solver and judge probabilities under "
                        "transforms, photo statistics", command=("eval", "naturalness"))
