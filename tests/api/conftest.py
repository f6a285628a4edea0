"""The real engine for API tests: `stylefill serve` in its own process on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from harness import Engine, isolated_models, serve_in_process, serve_in_thread

from stylefill.server import create_app


@pytest.fixture(scope="session")
def engine(tmp_path_factory) -> Iterator[Engine]:
    """`python -m stylefill serve --port P`, as the plug-in starts it, with a fresh config dir.

    Its models dir is fresh too (styles learned here must not reach the user's cache) but
    shares the weights and patch databases of the usual one, which take long to build.
    Requests may name files in the tests' temporary folders (docs/protocol.md, "Folders").
    """
    config = tmp_path_factory.mktemp("config")
    log = tmp_path_factory.mktemp("engine") / "engine.log"
    models = isolated_models(tmp_path_factory.mktemp("models"))
    yield from serve_in_process(config, models, log,
                                {"STYLEFILL_FOLDERS": str(tmp_path_factory.getbasetemp())})


@pytest.fixture
def client(engine: Engine) -> Iterator[httpx.Client]:
    with engine.client() as c:
        yield c


@pytest.fixture(scope="module")
def small_engine() -> Iterator[Engine]:
    """An engine app with a 64 KiB body limit, served by uvicorn in a thread of this process."""
    yield from serve_in_thread(create_app("small-engine-token", max_body=64 * 1024,
                                            background_styles=False),
                               "small-engine-token")
