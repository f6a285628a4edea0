"""The real engine fuzzed from its own OpenAPI schema (schemathesis, hypothesis underneath):
whatever arrives, no 5xx, and every 4xx is {"detail": "<one string>"}.

The schema's job `params` is any object; here each job kind gets its own params schema (from
the server's PARAMS models), so most generated jobs are valid and reach the deeper checks
(classes, folders, selections) rather than stopping at an unknown field. A long job keeps the
engine's one worker busy meanwhile and every job the fuzzer creates is cancelled while it waits,
so no fuzzed job computes. Figures go to the log and to fuzz.json in pytest's temporary folder.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from harness import Engine
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from test_server import FINISHED, start_long, wait

from stylefill.server import PARAMS, create_app

EXAMPLES = 60  # per operation and mode (and schemathesis' own phases): about 2,500 requests, 40 s
FIGURES: Counter = Counter()
STARTED: list[float] = []


def jobs_by_kind(openapi: dict) -> dict:
    """The schema with POST /v1/jobs as one body per job kind, each with its own params."""
    components = openapi["components"]["schemas"]
    plain = components["JobRequest"]
    variants = []
    for kind, model in PARAMS.items():
        params = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(params.pop("$defs", {}))
        variants.append({**plain, "properties": {**plain["properties"], "kind": {"const": kind},
                                                 "params": params}})
    components["JobRequest"] = {"oneOf": variants}
    return openapi


@pytest.fixture(scope="module")
def busy_engine(engine: Engine) -> Iterator[Engine]:
    """The engine with a long job on its worker, cancelled afterwards."""
    with engine.client() as client:
        running = start_long(client)
        STARTED.append(time.monotonic())
        yield engine
        client.post(f"/v1/jobs/{running}/cancel")
        wait(client, running, lambda s: s["state"] in FINISHED)


def fuzzed_schema() -> schemathesis.BaseSchema:
    """The engine's schema (as an app built here serves it), job params per kind."""
    schema = schemathesis.openapi.from_dict(jobs_by_kind(create_app("schema").openapi()))
    schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                                    max_examples=EXAMPLES, allow_x00=True, database="none")
    return schema


schema = fuzzed_schema()


def test_the_engine_serves_the_fuzzed_schema(engine: Engine):
    assert httpx.get(f"{engine.url}/openapi.json").json() == create_app("schema").openapi()


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
def test_no_input_gets_a_5xx_and_every_4xx_says_why(case, busy_engine: Engine):
    response = case.call(base_url=busy_engine.url, timeout=60,
                         headers={"Authorization": f"Bearer {busy_engine.token}"})
    FIGURES["requests"] += 1
    FIGURES[f"{response.status_code // 100}xx"] += 1
    assert response.status_code < 500, (case.as_curl_command(), response.text[:500])
    if response.status_code >= 400:
        assert set(response.json()) == {"detail"} and isinstance(response.json()["detail"], str), (
            case.as_curl_command(), response.text[:500])
    if case.path == "/v1/jobs" and response.status_code == 202:
        FIGURES["jobs accepted and cancelled while waiting"] += 1
        with busy_engine.client() as c:
            assert c.post(f"/v1/jobs/{response.json()['id']}/cancel").json()["state"] == "cancelled"


def test_fuzzing_figures(capsys, tmp_path_factory, client):
    """Runs after the fuzzing above (file order): the figures, and an engine that still works."""
    assert FIGURES["requests"] >= 1000 and FIGURES["5xx"] == 0, FIGURES
    figures = {**FIGURES, "seconds": round(time.monotonic() - STARTED[0], 1)}
    (tmp_path_factory.getbasetemp() / "fuzz.json").write_text(json.dumps(figures, indent=2))
    with capsys.disabled():
        print(f"\nfuzzing: {json.dumps(figures)}")
    assert client.get("/v1/backbones").status_code == 200

