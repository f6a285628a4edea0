"""Distributed runs on Ray (`--ray ADDRESS`; docs/scale.md).

Ray is an optional part of the engine (`install/install.sh --with-ray`, the `ray` extra). This
package is the only place that imports it, and only when a run asks for it: without the extra
every `--ray` flag fails with one line that says how to install it.

ADDRESS is `local` (a new Ray instance on this machine, listening on 127.0.0.1 only, shut down
when the run ends) or anything `ray.init` takes for an existing cluster (`auto` on a node of
the cluster, `HOST:6379`, `ray://HOST:10001`). Workers read and write the models dir at the
path this process uses (the driver's `models_dir()`), so on a real cluster it is a shared
filesystem mounted at the same path on every node.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from ..errors import StylefillError

RAY_MISSING = ("--ray needs Ray, an optional part of the engine: install it with "
               "`install/install.sh --with-ray` (or `pip install -e 'engine[ray]'`)")
LOCAL = "local"
PROBE_S = 5  # seconds a cluster address has to accept a connection
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
TOKEN_LOGGER = "ray._private.authentication.authentication_token_setup"


def require_ray() -> ModuleType:
    """The `ray` module, or the one-line StylefillError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise StylefillError(RAY_MISSING) from None
    return ray


@contextmanager
def connected(address: str, num_cpus: int | None = None) -> Iterator[ModuleType]:
    """Ray, connected to `address` for the block. A session this process already holds (a
    test's, a notebook's) is used as it is and left open; one opened here is shut down at the
    end (for `local`, that stops the instance and its workers)."""
    ray = require_ray()
    if address != LOCAL:
        _check_reachable(address)
    if ray.is_initialized():
        yield ray
        return
    options = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if address == LOCAL:
        # Ray turns its token authentication on for a new instance (a token in
        # ~/.ray/auth_token) and warns that it did; the warning is not for our users.
        logging.getLogger(TOKEN_LOGGER).setLevel(logging.ERROR)
        options.update(address=LOCAL, num_cpus=num_cpus)
    else:
        options.update(address=address)
    with _loopback(ray, address == LOCAL):
        try:
            ray.init(**options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StylefillError(f"--ray {address}: cannot connect to Ray ({first})") from None
        try:
            yield ray
        finally:
            ray.shutdown()


def _check_reachable(address: str) -> None:
    """A HOST:PORT (or ray://HOST:PORT) that does not answer fails here in seconds; Ray itself
    would keep retrying for minutes. Other forms (`auto`) are left to Ray."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit() or not host:
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_S).close()
    except OSError as exc:
        raise StylefillError(f"--ray {address}: no Ray cluster answers there "
                             f"({exc.strerror or exc}); `--ray local` starts one on this machine") from None


@contextmanager
def _loopback(ray: ModuleType, local: bool) -> Iterator[None]:
    """A local instance on 127.0.0.1 only. Ray binds its servers to the node's address, which it
    takes from the network unless "clusters" are off (its switch for laptops: Windows and macOS),
    so they are turned off for the instance: in the environment its processes inherit, and in
    this process's copy of the constant (read when Ray was imported). Restored afterwards."""
    constants = getattr(getattr(ray, "_private", None), "ray_constants", None)
    if not local or not hasattr(constants, "ENABLE_RAY_CLUSTER"):
        yield
        return
    before_env, before = os.environ.get(LOOPBACK_ENV), constants.ENABLE_RAY_CLUSTER
    os.environ[LOOPBACK_ENV], constants.ENABLE_RAY_CLUSTER = "0", False
    try:
        yield
    finally:
        constants.ENABLE_RAY_CLUSTER = before
        if before_env is None:
            os.environ.pop(LOOPBACK_ENV, None)
        else:
            os.environ[LOOPBACK_ENV] = before_env


def workers(ray: ModuleType, cpus_per_task: int) -> int:
    """How many tasks of `cpus_per_task` CPUs the cluster runs at once (its CPUs now)."""
    return max(1, int(ray.cluster_resources().get("CPU", 1) // cpus_per_task))

