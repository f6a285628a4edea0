"""The CLI's argument parsing on what hypothesis makes up: any command line either parses into
a request, or ends in argparse's usage error (exit 2) or a one-line InputError; never in a
traceback. Nothing is computed (the requests are built, not run)."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stylefill.cli import build_parser, request_from_args
from stylefill.errors import StylefillError
from stylefill.operations import OPERATIONS, Operation


def flags(op: Operation) -> list[str]:
    """The operation's flags as the CLI names them, and the inputs' and outputs' ones."""
    named = ["--" + (info.alias or name).replace("_", "-")
             for name, info in op.request.option_fields().items()]
    return named + ["--mask", "--rect", "-o", "--json", "-q", "--no-flips", "--help"]


VALUES = st.one_of(
    st.sampled_from(["ladybug", "0", "999", "1000", "-1", "1e9", "nan", "inf", "", "a,b", "1,2",
                     "1,2,3,4", "0,0,8,8", "true", "/nonexistent.png", "styles", "layers",
                     "9" * 40]),
    st.integers(-2**70, 2**70).map(str), st.floats().map(str),
    st.text(max_size=12))


@st.composite
def command_lines(draw) -> tuple[Operation, list[str]]:
    op = draw(st.sampled_from(list(OPERATIONS.values())))
    tokens = draw(st.lists(st.one_of(st.sampled_from(flags(op)), VALUES), max_size=8))
    return op, [*op.words, *tokens]


@settings(max_examples=400, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(command_lines())
def test_any_command_line_parses_or_says_what_is_wrong(line):
    op, argv = line
    try:
        with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
            args = build_parser().parse_args(argv)
    except SystemExit as exc:
        assert exc.code in (0, 2), argv  # --help, or a usage error
        return
    try:
        request = request_from_args(op, args)
    except StylefillError as exc:
        assert str(exc) and "\n" not in str(exc), (argv, str(exc))
        return
    assert isinstance(request, op.request)


@pytest.mark.parametrize("argv, phrase", [
    (["visualize", "ladybug", "-o", "x.png", "--iters", "0"], "--iters: Input should be greater"),
    (["visualize", "ladybug", "-o", "x.png", "--style", "64"], "--style: Input should be less"),
    (["patchdb", "build"], "give photos or folders, or --preset"),
    (["visualize", "ladybugg", "-o", "x.png"], "unknown class 'ladybugg'"),
])
def test_bad_values_are_one_line_errors(argv, phrase):
    with pytest.raises(StylefillError, match=phrase):
        request_from_args(OPERATIONS[{"patchdb": "patchdb_build"}.get(argv[0], argv[0])],
                          build_parser().parse_args(argv))
