"""The resource types the stand-in serves, as its discovery documents announce them."""

from __future__ import annotations

from dataclasses import dataclass

SCALABLE = ("Deployment", "ReplicaSet", "StatefulSet")  # served with a `scale` subresource
VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    status: bool = False  # has a /status subresource, so main writes keep status as it is
    generation: bool = False  # workloads: metadata.generation follows spec changes
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = tuple(VERBS)
    stored: bool = True  # False: a review the API server answers without storing it

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """How errors name the resource: `configmaps`, `deployments.apps`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def discovery(self) -> list[dict]:
        entry = {
            "name": self.plural,
            "singularName": self.kind.lower(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        out = [entry]
        if self.status:
            sub = {"name": f"{self.plural}/status", "singularName": "", "kind": self.kind}
            out.append({**sub, "namespaced": self.namespaced, "verbs": ["get", "patch", "update"]})
        if self.kind in SCALABLE:
            # kubectl scale finds the Scale kind of the subresource here.
            scale: dict = {"name": f"{self.plural}/scale", "singularName": "", "kind": "Scale"}
            scale.update(group="autoscaling", version="v1", namespaced=self.namespaced)
            out.append({**scale, "verbs": ["get", "patch", "update"]})
        if self.kind == "ServiceAccount":
            # kubectl create token: the TokenRequest subresource (identity.py)
            token: dict = {
                "name": f"{self.plural}/token",
                "singularName": "",
                "kind": "TokenRequest",
            }
            token.update(group="authentication.k8s.io", version="v1", namespaced=True)
            out.append({**token, "verbs": ["create"]})
        return out


def _r(gv: str, kind: str, plural: str, *short: str, flags: str = "") -> Resource:
    group, _, version = gv.rpartition("/")
    return Resource(
        group,
        version,
        kind,
        plural,
        namespaced="cluster" not in flags,
        short_names=short,
        status="status" in flags or "gen" in flags,
        generation="gen" in flags,
        categories=("all",) if "all" in flags else (),
    )


RESOURCES: list[Resource] = [
    _r("v1", "Namespace", "namespaces", "ns", flags="cluster status"),
    _r("v1", "ConfigMap", "configmaps", "cm"),
    _r("v1", "Secret", "secrets"),
    _r("v1", "Service", "services", "svc", flags="all status"),
    _r("v1", "ServiceAccount", "serviceaccounts", "sa"),
    _r("v1", "Pod", "pods", "po", flags="all status"),
    _r("v1", "Event", "events", "ev"),
    _r("v1", "Endpoints", "endpoints", "ep"),
    _r("v1", "PersistentVolumeClaim", "persistentvolumeclaims", "pvc", flags="status"),
    _r("v1", "PersistentVolume", "persistentvolumes", "pv", flags="cluster status"),
    _r("v1", "Node", "nodes", "no", flags="cluster status"),
    _r("v1", "ResourceQuota", "resourcequotas", "quota", flags="status"),
    _r("v1", "LimitRange", "limitranges", "limits"),
    _r("apps/v1", "Deployment", "deployments", "deploy", flags="all gen"),
    _r("apps/v1", "ReplicaSet", "replicasets", "rs", flags="all gen"),
    _r("apps/v1", "StatefulSet", "statefulsets", "sts", flags="all gen"),
    _r("apps/v1", "DaemonSet", "daemonsets", "ds", flags="all gen"),
    _r("apps/v1", "ControllerRevision", "controllerrevisions"),
    _r("batch/v1", "Job", "jobs", flags="all gen"),
    _r("batch/v1", "CronJob", "cronjobs", "cj", flags="all gen"),
    _r("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", "pdb", flags="gen"),
    _r("networking.k8s.io/v1", "Ingress", "ingresses", "ing", flags="status"),
    _r("networking.k8s.io/v1", "IngressClass", "ingressclasses", flags="cluster"),
    _r("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", "netpol"),
    _r(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        "hpa",
        flags="status",
    ),
    _r("rbac.authorization.k8s.io/v1", "Role", "roles"),
    _r("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
    _r("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", flags="cluster"),
    _r(
        "rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", flags="cluster"
    ),
    _r(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        "crd",
        flags="cluster status",
    ),
    # Access reviews (rbac.py): answered, never stored.
    Resource(
        "authorization.k8s.io",
        "v1",
        "SubjectAccessReview",
        "subjectaccessreviews",
        namespaced=False,
        verbs=("create",),
        stored=False,
    ),
    Resource(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        namespaced=False,
        verbs=("create",),
        stored=False,
    ),
    # The chart's ServiceMonitor (server.metrics.serviceMonitor.enabled) needs the operator's CRD.
    _r("monitoring.coreos.com/v1", "ServiceMonitor", "servicemonitors", "smon"),
]


class Registry:
    def __init__(self, resources: list[Resource]) -> None:
        self.resources = list(resources)
        self._by_path = {(r.group, r.version, r.plural): r for r in self.resources}

    def lookup(self, group: str, version: str, plural: str) -> Resource | None:
        return self._by_path.get((group, version, plural))

    def group_versions(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for r in self.resources:
            versions = out.setdefault(r.group, [])
            if r.version not in versions:
                versions.append(r.version)
        return out

    def in_group_version(self, group: str, version: str) -> list[Resource]:
        return [r for r in self.resources if (r.group, r.version) == (group, version)]

    @property
    def namespace(self) -> Resource:
        return self._by_path[("", "v1", "namespaces")]

    def by_kind(self, api_version: str, kind: str) -> Resource | None:
        return next(
            (r for r in self.resources if (r.api_version, r.kind) == (api_version, kind)), None
        )
