"""python -m stylefill.photo_sets SET DIR: write a named photo set's photos into DIR."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import StylefillError
from . import SETS, materialize


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in SETS:
        print(f"usage: python -m stylefill.photo_sets {{{','.join(SETS)}}} DIR", file=sys.stderr)
        return 2
    try:
        written = materialize(argv[0], Path(argv[1]))
    except StylefillError as exc:
        print(f"stylefill: error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(written)} photos in {argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
