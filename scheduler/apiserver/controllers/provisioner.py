"""The simulated CSI provisioner: kubernetes-csi's external-provisioner for every
provisioner name but ``kubernetes.io/no-provisioner`` (see ``volumes`` for the whole
story, and the PersistentVolume controller's loops it works beside).

``CSIProvisioner`` creates the volume a claim's provisioner was asked for -- for a
``WaitForFirstConsumer`` class only once the scheduler has set the claim's
``volume.kubernetes.io/selected-node`` -- as ``pvc-<claim uid>``, pre-bound to the claim,
with node affinity for the selected node's zone (its hostname when it has no zone) or,
without a selected node, the class's ``allowedTopologies``. A selected node that is gone
is ``ProvisioningFailed`` and the annotation is removed so that the scheduler picks
again. ``CSIDeleter`` deletes the Released volumes with reclaim policy Delete that it
owns.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ..store import Entry
from .base import Key, Mapper
from .volumes import (BETA_STORAGE_PROVISIONER, CLAIMS, CSINODES, HOSTNAME_LABEL, NO_PROVISIONER, NODES,
                      PROVISIONED_BY, PROVISIONER_IDENTITY, PVS, SELECTED_NODE, STORAGE_PROVISIONER, ZONE_LABEL,
                      InvalidObject, _PROVISIONER_ID_KEY, _VolumeLoop, _annotations, _deleted_externally,
                      _delay_binding, _meta, _phase, _request, _spec, _term_allows, _topology_terms, claim_class,
                      claim_ref, provisioned_name)

__all__ = ["CSIProvisioner", "CSIDeleter"]


class _Reschedule(Exception):
    """Provisioning on the selected node cannot work: the scheduler must pick again."""


class CSIProvisioner(_VolumeLoop):
    """external-provisioner's claim loop: create the volume a claim's provisioner was asked for."""

    name = "csi-provisioner"
    primary = CLAIMS.key

    def watches(self) -> Mapping[str, Mapper]:
        return {NODES.key: self._gone_node_claims, CSINODES.key: self._gone_node_claims}

    def _gone_node_claims(self, old: Entry | None, new: Entry | None) -> Iterable[Key]:
        """A node (or its CSINode) going away concerns the unbound claims provisioned on it."""
        if new is not None or old is None:
            return ()
        mark = f'"{SELECTED_NODE}":"{old.name}"'.encode()
        return [(e.namespace, e.name) for e in self.store.entries(self._claims)
                if mark in e.raw and b'"volumeName"' not in e.raw]

    def sync(self, key: Key) -> None:
        claim = self._claim(*key)
        if claim is None or _spec(claim).get("volumeName"):
            return
        ann = _annotations(claim)
        provisioner = ann.get(STORAGE_PROVISIONER) or ann.get(BETA_STORAGE_PROVISIONER) or ""
        if not provisioner or provisioner == NO_PROVISIONER:
            return  # not asked for, or not one of ours (knownProvisioner)
        cls_name = claim_class(claim)
        cls = self._class(cls_name)
        if cls is None or cls.get("provisioner") != provisioner:
            return  # the class changed since the claim was annotated
        node = ann.get(SELECTED_NODE, "")
        if _delay_binding(cls) and not node:
            return  # shouldProvision: a delayed claim waits for the scheduler's pick
        pv_name = provisioned_name(claim)
        if self._volume(pv_name) is not None:
            return  # provisioned already
        component = f"{provisioner}_{PROVISIONER_IDENTITY}"
        meta = _meta(claim)
        self._record(claim, "Normal", "Provisioning",
                     f'External provisioner is provisioning volume for claim "{meta["namespace"]}/{meta["name"]}"',
                     component=component)
        request = ((_spec(claim).get("resources") or {}).get("requests") or {}).get("storage")
        try:
            _request(claim)  # a malformed request is reported, not provisioned
            affinity = self._affinity(cls, node)
        except _Reschedule as e:
            self._record(claim, "Warning", "ProvisioningFailed", str(e), component=component)
            del claim["metadata"]["annotations"][SELECTED_NODE]  # rescheduleProvisioning
            self.client.update(CLAIMS.key, claim)
            return
        except InvalidObject as e:
            self._record(claim, "Warning", "ProvisioningFailed", e.message, component=component)
            return
        spec: dict[str, Any] = {
            "accessModes": list(_spec(claim).get("accessModes") or []),
            "capacity": {"storage": request if request is not None else "0"},
            "csi": {"driver": provisioner, "volumeHandle": pv_name,
                    "volumeAttributes": {_PROVISIONER_ID_KEY: PROVISIONER_IDENTITY}},
            "persistentVolumeReclaimPolicy": cls.get("reclaimPolicy") or "Delete",
            "storageClassName": cls_name,
            "claimRef": claim_ref(claim),
        }
        if cls.get("mountOptions"):
            spec["mountOptions"] = list(cls["mountOptions"])
        if _spec(claim).get("volumeMode"):
            spec["volumeMode"] = _spec(claim)["volumeMode"]
        if affinity:
            spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": affinity}}
        pv = {"apiVersion": "v1", "kind": "PersistentVolume",
              "metadata": {"name": pv_name, "annotations": {
                  PROVISIONED_BY: provisioner,
                  "volume.kubernetes.io/provisioner-deletion-secret-name": "",
                  "volume.kubernetes.io/provisioner-deletion-secret-namespace": ""}},
              "spec": spec}
        self.client.create(PVS.key, pv)
        self._record(claim, "Normal", "ProvisioningSucceeded", f"Successfully provisioned volume {pv_name}",
                     component=component)

    def _affinity(self, cls: Mapping[str, Any], node_name: str) -> list[dict[str, Any]]:
        """Where the new volume is accessible: the selected node's zone (or the node itself when it has no
        zone), checked against the class's allowedTopologies; without a node, those allowedTopologies."""
        terms = _topology_terms(cls)
        if not node_name:
            return terms
        if self.store.find(self.store.type(CSINODES.key), "", node_name) is None:
            raise _Reschedule(f'failed to get selected CSINode {node_name}: csinode.storage.k8s.io "{node_name}" '
                              f"not found")
        node = self.store.find(self.store.type(NODES.key), "", node_name)
        if node is None:
            raise _Reschedule(f'failed to get selected node {node_name}: nodes "{node_name}" not found')
        labels = node.labels
        if terms and not any(_term_allows(t, labels) for t in terms):
            shown = json.dumps(cls.get("allowedTopologies"), separators=(",", ":"))
            raise InvalidObject("ProvisioningFailed", f'error generating accessibility requirements: selected node '
                                                      f'"{node_name}" is not in the allowed topologies: {shown}')
        if labels.get(ZONE_LABEL):
            return [{"matchExpressions": [{"key": ZONE_LABEL, "operator": "In", "values": [labels[ZONE_LABEL]]}]}]
        return [{"matchExpressions": [{"key": HOSTNAME_LABEL, "operator": "In",
                                       "values": [labels.get(HOSTNAME_LABEL, node_name)]}]}]


class CSIDeleter(_VolumeLoop):
    """external-provisioner's volume loop: delete the Released volumes with reclaim policy Delete it owns."""

    name = "csi-provisioner:deleter"
    primary = PVS.key

    def sync(self, key: Key) -> None:
        pv = self._volume(key[1])
        if pv is None or _meta(pv).get("deletionTimestamp"):
            return
        if _phase(pv) != "Released" or _spec(pv).get("persistentVolumeReclaimPolicy") != "Delete":
            return  # shouldDelete
        if not _deleted_externally(pv):
            return  # isProvisionerForVolume
        self.client.delete(PVS.key, "", _meta(pv)["name"], uid=str(_meta(pv).get("uid", "")))
