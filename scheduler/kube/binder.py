"""Binding a pod to the node the scheduler chose, through the API.

This is the one place where vecsched changes a pod's placement, so its rules
are strict. Node-local choices recorded by Reserve plugins (GPU indices) are
merge-patched onto the pod *first*, so a device plugin never sees a bound pod
without them. The binding carries the pod's UID as a precondition, so a pod
deleted and recreated under the same name is never bound by a decision made
for its predecessor.

The outcome tells the caller what to do: ``BOUND``; ``GONE`` (404: deleted;
409: already bound or recreated) -- forget the assumption and do not retry;
``RETRY`` (5xx, 429, timeouts) -- forget, back off, and schedule again.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from scoring.objects import PodInfo
from scheduler.kube.client import MERGE_PATCH, KubeClient
from scheduler.kube.errors import ConflictError, KubeError, NotFoundError, TooManyRequests

__all__ = ["Outcome", "BindResult", "Binder"]


class Outcome(enum.Enum):
    BOUND = "bound"
    GONE = "gone"
    RETRY = "retry"


@dataclass(frozen=True, slots=True)
class BindResult:
    outcome: Outcome
    error: str = ""
    retry_after: float = 0.0
    """Seconds the server asked us to wait (429 Retry-After)."""


class Binder:
    """PATCH annotations (if any), then POST ``pods/<name>/binding`` with a UID precondition."""

    def __init__(self, *, client: KubeClient) -> None:
        self.client = client

    async def bind(self, *, pod: PodInfo, node: str, annotations: Mapping[str, str]) -> BindResult:
        try:
            if annotations:
                await self.client.send(
                    "PATCH", f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}",
                    body={"metadata": {"uid": pod.uid, "annotations": dict(annotations)}}, content_type=MERGE_PATCH)
            await self.client.bind(namespace=pod.namespace, name=pod.name, uid=pod.uid, node=node)
        except (NotFoundError, ConflictError) as e:
            return BindResult(Outcome.GONE, str(e))
        except TooManyRequests as e:
            return BindResult(Outcome.RETRY, str(e), retry_after=e.retry_after)
        except KubeError as e:
            # Other 4xx (403 Forbidden, 422 Invalid) will not heal by themselves either,
            # but retrying with backoff keeps the pod visible as failing instead of lost.
            # The cycle reports it as "Binding rejected: <e>", upstream's wording.
            return BindResult(Outcome.RETRY, str(e))
        return BindResult(Outcome.BOUND)
