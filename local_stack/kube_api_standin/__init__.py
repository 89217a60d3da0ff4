"""A stateful Kubernetes API stand-in for contract tests of the real clients (kubernetes
Python client, kubectl, helm v3 and v4). See `KubeApiStandIn`.

What it models, module by module: discovery and resource CRUD with resourceVersions,
generations, label/field selectors, watches, strategic/merge/JSON patches and single-manager
server-side apply (server.py, store.py, patches.py); helm's protobuf release Secrets
(protobuf.py); a controller that makes workloads ready (controller.py); ReplicaSet-owned pods
whose readiness depends on the Secrets and ConfigMaps they reference, and container runtimes
that run processes for Ready pods (pods.py); port-forward over the Python client's WebSocket
protocol (portforward.py); bearer-token identities and request attributes in the request log
(identity.py); injected faults and never-ready / never-serving marks for tests.

Simplifications (each also named where it lives):
- no admission, no schema validation, no field-ownership conflicts for server-side apply;
  garbage collection by ownerReferences happens inline on delete;
- authentication only (bearer tokens from its own table; unknown tokens get 401), no
  authorization: every user may do anything, and the request log says who did what;
- pods are bookkeeping: no images, probes, restarts or scheduling; only ReplicaSets create
  pods (StatefulSets, DaemonSets and Jobs report readiness without pods); init containers'
  config errors show on the containers; `never_ready` acts as a readiness probe that never
  passes, whether or not the container declares one; `never_serving` keeps a Ready pod's
  processes from starting;
- a pod port is served only by a registered container runtime (the local stack runs a
  Temporal dev server per release with a Ready frontend pod); any other pod port refuses
  connections;
- port-forward is served for the Python client's `v4.channel.k8s.io` WebSocket protocol;
  kubectl's SPDY port-forward is not (portforward.py says why) and is answered 400;
- plain HTTP on 127.0.0.1 only.
"""

from .server import ApiServer, Fault
from .standin import KubeApiStandIn

__all__ = ["ApiServer", "Fault", "KubeApiStandIn"]
