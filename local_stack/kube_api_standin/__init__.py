"""A stateful Kubernetes API stand-in for contract tests of the real clients (kubernetes
Python client, kubectl, helm v3 and v4). See `KubeApiStandIn`."""

from .server import ApiServer, Fault
from .standin import KubeApiStandIn

__all__ = ["ApiServer", "Fault", "KubeApiStandIn"]
