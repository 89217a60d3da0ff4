"""Client factories built once in worker.py and handed to the activity classes.

Each caches one client per region / kube context, because building them reads config files
and opens connection pools; the blocking clients are used from sync activities on threads.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from kubernetes import client as k8s
from kubernetes import config as k8s_config


class AwsClients:
    """boto3 clients per (service, region). AWS_ENDPOINT_URL is honoured by boto3 itself."""

    def __init__(self, session: boto3.Session | None = None):
        self._session = session or boto3.Session()
        self._clients: dict[tuple[str, str | None], Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str, region: str | None) -> Any:
        with self._lock:
            key = (service, region)
            if key not in self._clients:
                self._clients[key] = self._session.client(service, region_name=region)  # type: ignore[call-overload]
            return self._clients[key]


class KubeClients:
    """kubernetes ApiClients per kubeconfig context (None: the current context)."""

    def __init__(self, kubeconfig: str | None = None):
        self.kubeconfig = kubeconfig
        self._clients: dict[str | None, k8s.ApiClient] = {}
        self._lock = threading.Lock()

    def api_client(self, context: str | None) -> k8s.ApiClient:
        with self._lock:
            if context not in self._clients:
                self._clients[context] = k8s_config.new_client_from_config(
                    config_file=self.kubeconfig, context=context
                )
            return self._clients[context]

    def new_api_client(self, context: str | None) -> k8s.ApiClient:
        """An ApiClient of the caller's own (not cached, not shared): for port-forward, which
        patches the client it uses while it opens a stream."""
        return k8s_config.new_client_from_config(config_file=self.kubeconfig, context=context)

    def core_v1(self, context: str | None) -> k8s.CoreV1Api:
        return k8s.CoreV1Api(self.api_client(context))

    def apps_v1(self, context: str | None) -> k8s.AppsV1Api:
        return k8s.AppsV1Api(self.api_client(context))
