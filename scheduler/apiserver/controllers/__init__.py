"""The embedded control plane's controllers (kube-controller-manager's, for a cluster on one machine).

Each controller is a class in its own module with a ``primary`` kind and a
``reconcile``; ``ControllerManager`` runs them beside the API server.
"""

from __future__ import annotations

from typing import Final

from .base import Client, ClusterView, Controller, ControllerContext, Recorder, WorkQueue, controller_of, owner_ref
from .daemonset import DaemonSetController
from .deployment import DeploymentController
from .disruption import DisruptionController
from .gc import GarbageCollector
from .job import JobController
from .manager import ControllerManager
from .replicaset import ReplicaSetController, ReplicationManager
from .statefulset import StatefulSetController
from .provisioner import CSIDeleter, CSIProvisioner
from .volumes import ClaimBinder, VolumeBinder

DEFAULT_CONTROLLERS: list[type[Controller]] = [
    DeploymentController,
    ReplicaSetController,
    ReplicationManager,
    StatefulSetController,
    DaemonSetController,
    JobController,
    DisruptionController,
    GarbageCollector,
    ClaimBinder,
    VolumeBinder,
    CSIProvisioner,
    CSIDeleter,
]
"""The controllers an ``ApiServer`` runs unless told otherwise (kube-controller-manager's, for workloads and
persistent volumes, and a simulated CSI provisioner)."""

VOLUME_CONTROLLERS: Final[tuple[type[Controller], ...]] = (ClaimBinder, VolumeBinder, CSIProvisioner, CSIDeleter)
"""The persistentvolume controller's two loops and the simulated provisioner's two."""

__all__ = [
    "Client",
    "ClaimBinder",
    "ClusterView",
    "CSIDeleter",
    "CSIProvisioner",
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
    "VolumeBinder",
    "VOLUME_CONTROLLERS",
    "WorkQueue",
    "controller_of",
    "owner_ref",
]
