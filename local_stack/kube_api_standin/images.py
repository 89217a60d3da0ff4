"""The stand-in kubelet's image pulls, after pkg/kubelet/images/image_manager.go
(`EnsureImageExists`) and kuberuntime's `startContainer`.

For a container whose image the registry does not have (`registry(image)` is False):
- the first pull: Events `Pulling` (Normal, `Pulling image "<image>"`), `Failed` (Warning,
  `Failed to pull image "<image>": <runtime error>`) and `Failed` (Warning, `Error:
  ErrImagePull`); the container waits with reason `ErrImagePull` and the runtime's error as
  message (containerd's wording for a tag the registry does not have: `rpc error: code =
  NotFound desc = failed to pull and unpack image "docker.io/<name>:<tag>": failed to resolve
  reference ...: not found`);
- until the back-off ends: Events `BackOff` (Normal, `Back-off pulling image "<image>"`)
  and `Failed` (`Error: ImagePullBackOff`); the container waits with reason
  `ImagePullBackOff`, message `Back-off pulling image "<image>"`;
- after the back-off: pulled again (ErrImagePull again, a doubled back-off); an image that
  has appeared in the meantime is pulled and the container starts.
The back-off is per pod and image, as kubelet's (`<pod uid>_<image>`).

`registry` is None when no registry is linked (the stand-in alone): every image is there.

Simplifications: the back-off starts at 1 s and stops doubling at 8 s (kubelet: 10 s to
300 s), so tests see both states within seconds; pull policies are not read (every pull
asks the registry; a node has no image cache); `InvalidImageName` and registry errors other
than "not found" are not played; a Job pod's containers pull one by one as they start, a
ReplicaSet pod's all at once before any starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .store import Obj

BACKOFF_START = 1.0
BACKOFF_MAX = 8.0

Event = Callable[[str, str, str], None]
"""(reason, message, type) -> records an Event about the pod."""


def full_name(image: str) -> str:
    """`temporalio/ui:2` -> `docker.io/temporalio/ui:2`, as containerd names it."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return image
    return f"docker.io/{image}" if rest else f"docker.io/library/{image}"


class ImagePulls:
    def __init__(self) -> None:
        self.registry: Callable[[str], bool] | None = None
        # (pod uid, image) -> (back-off ends at, next back-off)
        self._backoff: dict[tuple[str, str], tuple[float, float]] = {}

    def pull(self, pod: Obj, image: str, event: Event) -> tuple[str, str] | None:
        """None when the image is there; else the waiting (reason, message)."""
        key = (pod["metadata"]["uid"], image)
        if self.registry is None or self.registry(image):
            self._backoff.pop(key, None)
            return None
        now = time.monotonic()
        ends, backoff = self._backoff.get(key, (0.0, BACKOFF_START))
        if now < ends:
            message = f'Back-off pulling image "{image}"'
            event("BackOff", message, "Normal")
            event("Failed", "Error: ImagePullBackOff", "Warning")
            return "ImagePullBackOff", message
        name = full_name(image)
        error = (
            f'rpc error: code = NotFound desc = failed to pull and unpack image "{name}": '
            f'failed to resolve reference "{name}": {name}: not found'
        )
        event("Pulling", f'Pulling image "{image}"', "Normal")
        event("Failed", f'Failed to pull image "{image}": {error}', "Warning")
        event("Failed", "Error: ErrImagePull", "Warning")
        self._backoff[key] = (now + backoff, min(backoff * 2, BACKOFF_MAX))
        return "ErrImagePull", error

    def retry_in(self, pod: Obj) -> float | None:
        """Seconds until the pod's earliest back-off ends; None when it has none."""
        uid = pod["metadata"]["uid"]
        ends = [e for (u, _), (e, _) in self._backoff.items() if u == uid]
        return max(0.05, min(ends) - time.monotonic()) if ends else None

    def forget(self, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        for key in [k for k in self._backoff if k[0] == uid]:
            del self._backoff[key]
