"""An engine that stops or restarts while the plug-in waits for its job: the GIMP user gets a
message that says the job is lost and to run it again, and no layer (no partial result).

A restart is what the plug-in sees at its engine's URL: a new engine with the same token and
none of the old one's jobs. Engines A and B share a token; a proxy at one URL forwards to A, then
to B the moment A is killed (so the plug-in's next poll meets the restarted engine, however
fast its polls), and finally to nothing (the engine stopped and did not come back).
"""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path

import pytest
from gimp_harness import CountingProxy, Engine, dead_url, sf, start_engine, stop_engine
from harness import isolated_models

GUARD = 120  # s: against a hang, never what a test measures


@pytest.fixture
def restarting(workdir: Path):
    """Engines A and B (A's token, so B is A restarted), and a proxy in front of A."""
    models = isolated_models(workdir / "models")
    first = start_engine(workdir, "restart-a", models=models)
    config = workdir / "restart-b-config"
    config.mkdir(exist_ok=True)
    shutil.copy2(first.config_dir / "token", config / "token")
    second = start_engine(workdir, "restart-b", models=models)
    proxy = CountingProxy(first.url)
    yield first, second, proxy
    proxy.close()
    for engine in (first, second):
        stop_engine(engine)


def _running(engine: Engine, job_id: str) -> None:
    client, end = engine.client(), time.monotonic() + GUARD
    while client.job(job_id)["state"] != "running":
        assert time.monotonic() < end, client.job(job_id)
        time.sleep(0.1)


def _restart(first: Engine, second: Engine, proxy: CountingProxy) -> None:
    """The URL answers from B (a poll already on its way to A finishes there first), then A
    dies: the plug-in's next poll meets an engine that never had the job."""
    proxy.target = second.url
    time.sleep(1.0)
    first.proc.send_signal(signal.SIGKILL)


def _stop(second: Engine, proxy: CountingProxy, dead: str) -> None:
    proxy.target = dead
    second.proc.send_signal(signal.SIGKILL)


def test_the_client_says_a_job_was_lost_to_a_restart_or_a_stop(restarting):
    first, second, proxy = restarting
    client = sf.Client(sf.Config({"url": proxy.url, "token_file": str(first.config_dir / "token")}))
    params = {"class": "ladybug", "iters": 5000}
    job = client.create_job("visualize", params)["id"]
    _running(first, job)
    _restart(first, second, proxy)
    lost = "while the job ran.* so nothing was added; run it again"
    with pytest.raises(sf.EngineError, match="restarted " + lost):
        client.wait(job)
    job = client.create_job("visualize", params)["id"]
    _running(second, job)
    with dead_url() as dead:
        _stop(second, proxy, dead)
        with pytest.raises(sf.EngineError, match="stopped " + lost):
            client.wait(job)


def test_gimp_user_gets_a_clear_message_and_no_layer(gimp, restarting, workdir: Path):
    first, second, proxy = restarting
    config = workdir / "restart.json"
    config.write_text(json.dumps({"url": proxy.url,
                                  "token_file": str(first.config_dir / "token")}))
    proc = gimp.popen("""
image, layer = load("chelsea")
image.select_rectangle(Gimp.ChannelOps.REPLACE, 60, 60, 100, 100)
for name in ("restarted", "stopped"):
    OUT[name] = call("plug-in-stylefill-visualize", image, [layer], class_name="ladybug",
                     iterations="custom", custom_iterations=5000)
    OUT[name + "_layers"] = names(image)
OUT["gimp"] = Gimp.version()
image.delete()
""", env={"STYLEFILL_PLUGIN_CONFIG": str(config)})
    output = []
    try:
        with dead_url() as dead:
            for engine, fault in ((first, lambda: _restart(first, second, proxy)),
                                  (second, lambda: _stop(second, proxy, dead))):
                job_id = _next_job(proc, output)
                _running(engine, job_id)
                fault()
            output.append(proc.stdout.read())
            proc.wait(timeout=GUARD)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = "".join(output)
    assert proc.returncode == 0, text[-3000:]
    result = json.loads(text.split("RESULT ", 1)[1].splitlines()[0])
    for name in ("restarted", "stopped"):
        assert result[name]["status"] == "execution-error", result[name]
        message = result[name]["message"]
        assert f"engine {name} while the job ran" in message, message
        assert "so nothing was added; run it again" in message, message
        assert result[name + "_layers"] == ["Background"]  # no partial layer
    assert result["gimp"].startswith("3.")


def _next_job(proc, output: list[str]) -> str:
    """The id of the next job the plug-in reports creating (`stylefill: visualize job ID`)."""
    end = time.monotonic() + GUARD
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line:
            break
        output.append(line)
        if "stylefill: visualize job " in line:
            return line.split("job ")[1].strip()
    pytest.fail("".join(output)[-3000:])
