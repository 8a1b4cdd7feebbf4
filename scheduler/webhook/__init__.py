"""vecsched's admission webhooks: route whole namespaces to vecsched, validate PodGroups and configs.

Operators adopt a second scheduler by namespace, not by editing every chart:
``vecsched webhook`` serves ``admission.k8s.io/v1`` reviews over HTTPS so that
a namespace labelled ``vecsched.io/scheduler-name: <profile>`` gets its new
Pods' ``schedulerName`` set (``pods``), Jobs' pods join gangs
(``pods``), and PodGroups that can never run or scheduler configurations that
``vecsched run`` would refuse are turned away at the API (``podgroups``,
``configs``).

Where things live: the wire format and field errors in ``review``; one pure
decision module per webhook (``pods``, ``podgroups``, ``configs``); what the
webhooks know of the cluster in ``cluster`` (informers); the certificate that
follows its files in ``tls``; HTTP, limits, deadline and metrics in
``server``; flags in ``command``.
"""

from __future__ import annotations

from scheduler.webhook.pods import PodRouting, Verdict, mutate_pod
from scheduler.webhook.review import AdmissionRequest, BadReview, FieldError, read_review, review_response
from scheduler.webhook.server import WebhookMetrics, WebhookServer, WebhookSettings, serve_webhook

__all__ = [
    "AdmissionRequest",
    "BadReview",
    "FieldError",
    "PodRouting",
    "Verdict",
    "WebhookMetrics",
    "WebhookServer",
    "WebhookSettings",
    "mutate_pod",
    "read_review",
    "review_response",
    "serve_webhook",
]
