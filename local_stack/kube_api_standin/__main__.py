"""`python -m local_stack.kube_api_standin --port 0 --kubeconfig PATH`: serve until SIGTERM.

Prints one JSON line ({"url", "port", "kubeconfig", "certificate_authority"}) once listening,
so a parent can wait on it; `certificate_authority` is the PEM of the CA its HTTPS
certificate comes from (the kubeconfig carries it too).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from .standin import KubeApiStandIn


async def serve(args: argparse.Namespace) -> None:
    standin = await KubeApiStandIn.start_in_loop(port=args.port, controller=not args.no_controller)
    if args.temporal_frontend_logs:
        from local_stack.frontend_pods import TemporalFrontendPods

        standin.add_runtime(TemporalFrontendPods(args.temporal_frontend_logs))
    if args.image_registry:
        standin.use_registry(_registry_lookup(args.image_registry))
    kubeconfig = (
        standin.write_kubeconfig(args.kubeconfig, args.namespace) if args.kubeconfig else None
    )
    line = {
        "url": standin.url,
        "port": standin.port,
        "kubeconfig": str(kubeconfig) if kubeconfig else None,
        "certificate_authority": standin.ca_pem.decode(),
    }
    print(json.dumps(line), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await standin.stop_async()


def _registry_lookup(url: str) -> Callable[[str], bool]:
    """Does the registry at `url` (every registry's mirror) have the image? Asked over its
    OCI API as a runtime asks (a short blocking call to 127.0.0.1 on the stand-in's loop);
    a found image is remembered, a missing one asked again at the next pull."""
    from adapters.registry import RegistryClient, RegistryUnreachable

    client = RegistryClient({"docker.io": url}, timeout=2.0)
    found: set[str] = set()

    def has(image: str) -> bool:
        if image not in found:
            try:
                if client.exists(image).verdict == "found":
                    found.add(image)
            except RegistryUnreachable:
                return False
        return image in found

    return has


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local_stack.kube_api_standin", description=__doc__
    )
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--kubeconfig", help="write a kubeconfig for the real clients here")
    parser.add_argument("--namespace", help="default namespace of the kubeconfig's context")
    parser.add_argument(
        "--no-controller", action="store_true", help="nothing becomes ready by itself"
    )
    parser.add_argument(
        "--temporal-frontend-logs",
        type=Path,
        help="run a Temporal dev server for each Ready Temporal frontend pod (the local "
        "stack's frontends), logging into this folder",
    )
    parser.add_argument(
        "--image-registry",
        help="kubelet pulls from the registry at this URL (the local stack's registry "
        "stand-in): a pod whose image it lacks goes to ImagePullBackOff",
    )
    asyncio.run(serve(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
