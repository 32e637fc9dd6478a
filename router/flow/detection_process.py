"""The host's shared detection process (`detection.process`): one process owns the models, the
batcher and the detection cache, and every router process feeds it JPEG bytes over a Unix socket
(detectors.server, detectors.proxy), so their requests share batches and the cache.

The first router process starts it (its own process group, under the orphan guard: it dies with
the router), waits until it answers, and restarts it with backoff when it exits. The extra worker
processes find its socket through `SOCKET_DIR_ENV` and wait for it before they bind.

`python -m router.flow.detection_process DIR` runs it on the config the router wrote to DIR.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import shutil
import signal
import sys
from pathlib import Path

from detectors.proxy import reachable
from detectors.server import DetectionServer
from detectors.wire import private_socket_dir
from engines.servers import ManagedServer, ServerStartError
from router.config import Config
from router.dispatch.launcher import ORPHAN_GRACE_S, log_dir
from router.errors import ConfigError

log = logging.getLogger(__name__)
SOCKET_DIR_ENV = "ROADWORK_DETECTION_DIR"  # set by the first router process, inherited by the others
START_TIMEOUT_S = 600.0


def socket_path(directory: str) -> str:
    return str(Path(directory) / "detection.sock")


def shared_dir(config: Config) -> str:
    """The detection process's private directory: made by the first router process (and announced
    to the processes it starts), inherited by the extra workers."""
    if config.server.worker_index == 0:
        os.environ[SOCKET_DIR_ENV] = directory = private_socket_dir()
        return directory
    directory = os.environ.get(SOCKET_DIR_ENV, "")
    if not directory:
        raise ConfigError(
            f"detection.process: this worker process has no shared detection process ({SOCKET_DIR_ENV} is not "
            "set); worker processes are started by the first router process"
        )
    return directory


class _SocketServer(ManagedServer):
    """A ManagedServer healthy when the detection process answers on its socket."""

    def __init__(self, path: str, **kwargs: object) -> None:
        super().__init__(base_url=f"unix:{path}", **kwargs)  # type: ignore[arg-type]
        self.path = path

    async def healthy(self) -> bool:
        return await reachable(self.path)


class DetectionProcess:
    """The detection process the first router process runs: start, restart with backoff, stop."""

    def __init__(self, config: Config, directory: str) -> None:
        self.directory = directory
        self.path = socket_path(directory)
        Path(directory, "config.json").write_text(config.model_dump_json())
        env = dict(os.environ)
        if env.pop("ROADWORK_SHARED_CORES", None):  # share_cores split the cores for N processes: this one
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(os.cpu_count() or 1)  # runs all the models
        argv = [sys.executable, "-m", "router.flow.detection_process", directory]
        self.server = _SocketServer(
            self.path, argv=argv, env=env, log_path=log_dir(config) / "detection.log", orphan_grace_s=ORPHAN_GRACE_S
        )
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        return self.server.pid

    async def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start it and wait until it answers; ConfigError (with its log) if it exits first."""
        try:
            await self.server.start(timeout_s)
        except (ServerStartError, TimeoutError) as exc:
            raise ConfigError(f"detection.process: the shared detection process did not start: {exc}") from exc
        log.info("detection process (pid %s) is up on %s", self.server.pid, self.path)

    async def supervise(self, check_s: float = 0.5, max_backoff_s: float = 30.0) -> None:
        """Forever: start it again when it exits (1 s backoff, doubling while it keeps failing)."""
        backoff = 1.0
        while True:
            await asyncio.sleep(check_s)
            if self.server.alive:
                continue
            self.restarts += 1
            log.warning("the detection process exited (code %s); restarting it", self.server.returncode)
            try:
                await self.start()
                backoff = 1.0
            except ConfigError as exc:
                log.error("%s; again in %.0f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(max_backoff_s, backoff * 2)

    async def stop(self, grace_s: float = 10.0) -> None:
        await self.server.stop(grace_s)
        shutil.rmtree(self.directory, ignore_errors=True)


async def _serve(config: Config, path: str) -> None:
    from router.flow.detection import build_ensemble, warm_up_ensemble

    ensemble = build_ensemble(config)
    await warm_up_ensemble(ensemble, config)
    server = DetectionServer(ensemble, path)
    await server.start()
    gc.collect()
    gc.freeze()  # the models live as long as the process: keep full collections off the request path
    log.info("detection process %d serving %s", os.getpid(), path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    serving = asyncio.create_task(server.serve_forever())
    await stop.wait()
    serving.cancel()
    ensemble.close()


def main(argv: list[str]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    directory = argv[0]
    config = Config.model_validate_json(Path(directory, "config.json").read_text())
    try:
        asyncio.run(_serve(config, socket_path(directory)))
    except ConfigError as exc:  # weights that do not load: the router shows this with the log's tail
        print(f"roadwork-router detection process: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv[1:])
