"""A stateful Kubernetes API stand-in for contract tests of the real clients (kubernetes
Python client, kubectl, helm v3 and v4). See `KubeApiStandIn`.

What it models, module by module: discovery and resource CRUD with resourceVersions,
generations, label/field selectors, watches, `dryRun=All`, strategic/merge/JSON patches and
server-side apply (server.py, store.py, patches.py); field managers, field ownership and
apply conflicts (`force=true` wins), so `kubectl scale` then a helm v4 upgrade conflicts as
on a cluster (ownership.py); the `scale` subresource of Deployments, ReplicaSets and
StatefulSets that `kubectl scale` uses (server.py); what the API server fills in on every
write, defaulted fields and quantities in canonical form (`1000m` -> `1`), which a drift
check must tell from hand edits (defaulting.py); Service port validation (validation.py);
helm's protobuf release Secrets (protobuf.py); a controller that makes workloads ready and
writes `deployment.kubernetes.io/revision` (controller.py); ReplicaSet-owned pods
whose readiness depends on the Secrets and ConfigMaps they reference, and container runtimes
that run processes for Ready pods (pods.py); Pod Security admission of those pods by the
namespace's `enforce` label, baseline and restricted checks with the plugin's messages, and
`FailedCreate` on the ReplicaSet when it refuses (pod_security.py); port-forward over the
Python client's WebSocket protocol (portforward.py) and kubectl's SPDY/3.1, tunnelled in a
WebSocket or over a plain upgrade (portforward_spdy.py, spdy.py); the Tables `kubectl get`
prints for pods and Deployments (tables.py); bearer-token identities and request attributes in
the request log
(identity.py); injected faults and never-ready / never-serving marks for tests.

Simplifications (each also named where it lives):
- no admission other than Pod Security on ReplicaSet pods (pod_security.py names what it
  leaves out) and no schema validation (Service ports are the one validation); field
  ownership is kept in the stand-in, not served as `metadata.managedFields`, and not per API
  version; defaulting covers the workload and Service fields charts render, not every
  kind; garbage collection by ownerReferences happens inline on delete;
- authentication only (bearer tokens from its own table; unknown tokens get 401), no
  authorization: every user may do anything, and the request log says who did what;
- pods are bookkeeping: no images, probes, restarts or scheduling (a container runtime is
  handed the pod and the files its ConfigMap and Secret volumes mount, as they were when it
  started); only ReplicaSets create
  pods (StatefulSets, DaemonSets and Jobs report readiness without pods); init containers'
  config errors show on the containers; `never_ready` acts as a readiness probe that never
  passes, whether or not the container declares one; `never_serving` keeps a Ready pod's
  processes from starting;
- a pod port is served only by a registered container runtime (the local stack runs a
  Temporal dev server per release with a Ready frontend pod); any other pod port refuses
  connections;
- NetworkPolicies (networking.k8s.io/v1) are stored and returned like any object and never
  enforced: no traffic is filtered, whatever a policy says (deploy/'s and the bootstrap's);
- SPDY without flow control (kubectl's spdystream has none either); a port-forward request
  whose second stream never comes is not timed out;
- Tables only for pods and Deployments (other kinds answer the plain list, and kubectl prints
  NAME and AGE);
- NetworkPolicies (networking.k8s.io/v1) are stored, defaulted and served like any object
  (kubectl get/edit/patch them), but not enforced: there is no pod network, so a policy
  allows or denies no traffic, and a test can only prove what is declared and kept;
- plain HTTP on 127.0.0.1 only.
"""

from .server import ApiServer, Fault
from .standin import KubeApiStandIn

__all__ = ["ApiServer", "Fault", "KubeApiStandIn"]
