"""Table 1 by one command (`stylefill eval table1`): its bookkeeping, and the paper's claim on
ten held-out photos at matched features."""

from __future__ import annotations

import json
import statistics

from PIL import Image

from stylefill.cli import main
from stylefill.evaluation import METHODS, Run, Table1, Verdict, photos_in

FEATURE_BOUND = 0.05       # the median relative feature error every method must reach
FEATURE_BOUND_MOST = 0.10  # ... and what at most one photo in ten may exceed


def test_markdown_reports_both_measures_and_wins():
    runs = [Run("a.jpg", "[8]+rand", False, 0.8, 0.04, 1.0), Run("a.jpg", "[8]+[7]", False, 0.6, 0.03, 1.0),
            Run("a.jpg", "ours", False, 0.5, 0.03, 1.0), Run("b.jpg", "[8]+rand", False, 0.7, 0.05, 1.0),
            Run("b.jpg", "[8]+[7]", False, 0.5, 0.02, 1.0), Run("b.jpg", "ours", False, 0.55, 0.02, 1.0)]
    table = Table1(runs)
    assert table.wins("ours", "[8]+[7]", False) == (1, 2)
    assert table.wins("[8]+[7]", "[8]+rand", False) == (2, 2)
    text = table.markdown()
    assert "| ours | no | 2 | 0.5250 | 0.5250 | 0.0250 | 0.0250 | 0.0250 | 0.0050 | 0.0300 |" in text
    assert "ours closer than [8]+[7]: 1 of 2 photos" in text


def test_markdown_reports_photo_statistics_and_the_judge():
    runs = [Run("a.jpg", m, False, 0.5, 0.03, 1.0, 0.3 + i / 10, 1.5 - i / 10, 0.35, 1.4)
            for i, m in enumerate(METHODS)]
    table = Table1(runs, verdicts={("a.jpg", "ours", False): Verdict(3, 0.2),
                                   ("a.jpg", "[8]+[7]", False): Verdict(1, 0.6)})
    text = table.markdown()
    assert "| the photos | - | 1 | 0.350 | 1.40 |" in text
    assert "| ours | no | 1 | 0.500 | 1.30 |" in text
    assert "| ours | no | 1 | 0 | 1 | 0.200 |" in text and "| [8]+[7] | no | 1 | 1 | 1 | 0.600 |" in text
    assert "judge" not in Table1(runs).markdown()  # no verdicts, no judge table


def test_folder_errors_are_clear(tmp_path, capsys):
    assert main(["eval", "table1", str(tmp_path / "missing"), "-o", str(tmp_path)]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["eval", "table1", str(tmp_path), "-o", str(tmp_path)]) == 2
    assert "no images" in capsys.readouterr().err
    Image.new("RGB", (64, 48)).save(tmp_path / "x.png")
    assert main(["eval", "table1", str(tmp_path), "--layer", "conv9", "-o", str(tmp_path)]) == 2
    assert "block15" in capsys.readouterr().err  # the valid layers are listed
    assert [p.name for p in photos_in(tmp_path)] == ["x.png"]


def test_table1_at_matched_features_on_held_out_photos(held_out_photos, tmp_path):
    """Ten photos no setting was tried on (tests/data/debian_files.py HELD_OUT), the default
    settings and the embedded database, the same steps for all three methods.

    Every method reconstructs the features: median relative feature error <= 0.05, at most one
    photo above 0.10 (measured medians 0.042, 0.036, 0.042; worst 0.088). At those errors the
    k-NN start beats a random one in mean and median relative L2 (0.566 vs 0.700, 0.552 vs
    0.619). The paper's last step, the patch prior beating [8]+[7], is NOT reproduced at matched
    features: measured a tie (mean 0.5667 vs 0.5661, median 0.546 vs 0.552, closer on 6 of 10;
    docs/evaluation.md). What is asserted is what holds with a margin: ours is within 1 % of
    [8]+[7] in mean relative L2 and closer on at least half of the photos."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for path in held_out_photos:
        (folder / path.name).symlink_to(path)
    out, report = tmp_path / "table1", tmp_path / "table1.json"
    assert main(["eval", "table1", str(folder), "--whiten", "off", "--database", "default",
                 "-o", str(out), "--json", str(report), "-q"]) == 0
    runs = json.loads(report.read_text())["runs"]
    table = Table1([Run(**{k: v for k, v in r.items() if k != "judge"}) for r in runs])
    text = (out / "table1.md").read_text()
    print(text)
    assert Image.open(out / "table1.png").size[0] > 0
    # every result saved, measured (photo statistics) and judged by the independent network
    assert len(list((out / "images").glob("*.png"))) == len(runs)
    assert all(r["hf_share"] is not None and 1 <= r["judge"]["rank"] <= 1000 for r in runs)
    assert "| the photos | - | 10 |" in text and "judge's top-1 as on the photo" in text
    for method in METHODS:
        fe = table.values(method, False, "feature_error")
        assert len(fe) == len(held_out_photos)
        assert statistics.median(fe) <= FEATURE_BOUND, (method, fe)
        assert sum(f > FEATURE_BOUND_MOST for f in fe) <= 1, (method, fe)
    rl2 = {m: table.values(m, False, "relative_l2") for m in METHODS}
    for summary in (statistics.mean, statistics.median):
        assert summary(rl2["[8]+[7]"]) < summary(rl2["[8]+rand"]), rl2
    assert statistics.mean(rl2["ours"]) < 1.01 * statistics.mean(rl2["[8]+[7]"]), rl2
    assert table.wins("ours", "[8]+[7]", False)[0] >= len(held_out_photos) // 2, rl2


def test_an_evaluation_resumes_where_it_stopped_and_keeps_setups_apart(tmp_path, capsys):
    folder, out = tmp_path / "photos", tmp_path / "table1"
    folder.mkdir()
    for name, colour in (("a.png", (200, 40, 40)), ("b.png", (40, 200, 40))):
        Image.new("RGB", (96, 64), colour).save(folder / name)
    args = ["eval", "table1", str(folder), "--whiten", "off", "--iters", "2", "-o", str(out), "-q"]
    assert main([*args, "--limit", "1"]) == 0
    journal = out / "runs.jsonl"
    assert len(journal.read_text().splitlines()) == 1 + len(METHODS)
    first = journal.read_text()
    assert main([*args, "--json", str(tmp_path / "m.json")]) == 0  # only b.png is run now
    lines = journal.read_text().splitlines()
    assert journal.read_text().startswith(first) and len(lines) == 1 + 2 * len(METHODS)
    assert len(json.loads((tmp_path / "m.json").read_text())["runs"]) == 2 * len(METHODS)
    assert "2 photos" in (out / "table1.md").read_text()
    both = Image.open(out / "table1.png").size
    assert main([*args, "--figure", "b."]) == 0  # nothing left to run: table and figure again
    assert journal.read_text().splitlines() == lines
    one = Image.open(out / "table1.png").size
    assert one[0] == both[0] and one[1] < both[1]  # one row: b.png's
    assert main([*args[:-3], "--iters", "3", "-o", str(out), "-q"]) == 2
    assert "another setup" in capsys.readouterr().err
