"""The embedded control plane's controllers (kube-controller-manager's, for a cluster on one machine).

Each controller is a class in its own module with a ``primary`` kind and a
``reconcile``; ``ControllerManager`` runs them beside the API server.
"""

from __future__ import annotations

from .base import Client, ClusterView, Controller, ControllerContext, Recorder, WorkQueue, controller_of, owner_ref
from .daemonset import DaemonSetController
from .deployment import DeploymentController
from .disruption import DisruptionController
from .gc import GarbageCollector
from .job import JobController
from .manager import ControllerManager
from .replicaset import ReplicaSetController, ReplicationManager
from .statefulset import StatefulSetController

DEFAULT_CONTROLLERS: list[type[Controller]] = [
    DeploymentController,
    ReplicaSetController,
    ReplicationManager,
    StatefulSetController,
    DaemonSetController,
    JobController,
    DisruptionController,
    GarbageCollector,
]
"""The controllers an ``ApiServer`` runs unless told otherwise (kube-controller-manager's, for workloads)."""

__all__ = [
    "Client",
    "ClusterView",
    "Controller",
    "ControllerContext",
    "ControllerManager",
    "DEFAULT_CONTROLLERS",
    "DaemonSetController",
    "DeploymentController",
    "DisruptionController",
    "GarbageCollector",
    "JobController",
    "ReplicaSetController",
    "ReplicationManager",
    "StatefulSetController",
    "Recorder",
    "WorkQueue",
    "controller_of",
    "owner_ref",
]
