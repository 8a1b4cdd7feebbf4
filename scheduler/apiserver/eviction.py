"""The Eviction API (``pods/eviction``): a pod deletion that respects PodDisruptionBudgets.

``kubectl drain``, the cluster autoscaler and descheduling tools never delete
a running pod directly; they POST a policy/v1 ``Eviction`` and let the API
server decide. A scheduler that evicts to make room must meet the same
refusals on this control plane as on a real cluster, so ``evict`` follows
kube-apiserver's eviction REST handler:

* a pod that is not running (Pending, Succeeded, Failed) or is already
  terminating is deleted at once, without looking at budgets (a Pending pod
  with a ``resourceVersion`` precondition, so that it cannot turn Ready and be
  deleted unprotected);
* a pod matched by more than one budget of its namespace is refused with 500;
* a budget whose status lags its spec (``observedGeneration`` below
  ``generation``) answers 429 "still being processed"; ``disruptionsAllowed``
  of 0 answers 429 with a ``DisruptionBudget`` cause saying how many healthy
  pods the budget needs and has;
* a pod that is not Ready is deleted without spending the budget when the
  budget's ``unhealthyPodEvictionPolicy`` is ``AlwaysAllow``, or the
  application is healthy anyway (``currentHealthy >= desiredHealthy > 0``);
* otherwise ``disruptionsAllowed`` is decremented and the pod recorded in
  ``disruptedPods`` (so the disruption controller stops counting it before its
  deletion shows), the budget's status update retried on conflict; then the
  pod gets the ``DisruptionTarget`` condition (``EvictionByEvictionAPI``) and
  is deleted with the eviction's DeleteOptions (grace period, preconditions,
  propagation, dry run).

The answer is the ``Status`` kube-apiserver sends (201 ``Success``), and a
refusal is the ``ApiError`` with its code, message and causes. Everything runs
in one step of the event loop, so the budget read, its decrement and the pod
deletion cannot interleave with another request; the conflict retries only
matter for a caller that wrote the budget in between. Which pods a budget
selects, which are Ready and how its ``DisruptionAllowed`` condition follows
``disruptionsAllowed`` are read as the disruption controller reads them
(``pdbhelper.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from . import errors
from .objects import now_rfc3339
from .operations import Operations, WriteOptions
from .pdbhelper import SelectorError, compile_selector, is_pod_ready, update_disruption_allowed_condition
from .resources import builtin
from .store import Entry, Store

__all__ = ["evict", "MAX_DISRUPTED_PODS"]

PODS: Final = builtin("pods")
PDBS: Final = builtin("poddisruptionbudgets.policy")
MAX_DISRUPTED_PODS: Final = 2000
"""Upstream's ``MaxDisruptedPodSize``: a budget with more unconfirmed evictions refuses new ones."""
_CONFLICT_RETRIES: Final = 20  # upstream's EvictionsRetry.Steps
_STILL_PROCESSING_RETRY: Final = 10  # seconds upstream suggests to a client whose budget is being recomputed
_API_VERSIONS: Final = ("policy/v1", "policy/v1beta1")


def evict(*, store: Store, ops: Operations, namespace: str, name: str, body: Any,
          dry_run: bool = False) -> dict[str, Any]:
    """Evict pod ``namespace/name`` as ``POST .../pods/<name>/eviction`` with ``body`` would.

    ``dry_run`` is the request's ``dryRun=All``. Returns the ``Status`` to answer
    with 201; raises ``ApiError`` for every refusal.
    """
    options = _delete_options(body, namespace=namespace, name=name, dry_run=dry_run)
    entry = store.get(PODS, namespace, name)
    pod = entry.obj()
    if _can_ignore_budgets(pod):
        rv = options.rv or (str(entry.rv) if _enforce_resource_version(pod) else "")
        _add_condition_and_delete(store, ops, namespace, name, options, rv=rv)
        return errors.success_status(code=201)
    budgets = _budgets_of(store, namespace, entry)
    pdb_name, unguarded = "", False
    if len(budgets) > 1:
        raise errors.ApiError(code=500, reason="", message=(
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."))
    if budgets:
        pdb = budgets[0].obj()
        pdb_name = pdb["metadata"]["name"]
        if not is_pod_ready(pod):
            status = pdb.get("status") or {}
            healthy, desired = int(status.get("currentHealthy") or 0), int(status.get("desiredHealthy") or 0)
            if (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy") == "AlwaysAllow" or healthy >= desired > 0:
                unguarded = True  # deleting an unready pod does not disrupt the application further
        if not unguarded:
            _check_and_decrement(store, ops, pdb_name=pdb_name, namespace=namespace, pod_name=name,
                                 dry_run=options.dry_run)
    rv = options.rv or (str(entry.rv) if unguarded else "")
    try:
        _add_condition_and_delete(store, ops, namespace, name, options, rv=rv)
    except errors.ApiError as e:
        if e.code == 409 and unguarded and not options.rv:
            raise _still_processing(pdb_name) from None  # the pod changed (maybe became Ready): try again
        raise
    return errors.success_status(code=201)


@dataclass(frozen=True)
class _Options:
    """The DeleteOptions an eviction carries, checked."""

    uid: str
    rv: str
    grace: int | None
    propagation: str | None
    dry_run: bool


def _delete_options(body: Any, *, namespace: str, name: str, dry_run: bool) -> _Options:
    if not isinstance(body, dict):
        raise errors.bad_request("the body of the request is not a Eviction object: expected a JSON object")
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if kind is not None and kind != "Eviction":
        raise errors.bad_request(f'{kind} in version "{api_version or "policy/v1"}" cannot be handled as a Eviction: '
                                 "the kind does not match the endpoint")
    if api_version is not None and api_version not in _API_VERSIONS:
        raise errors.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API version (policy/v1)")
    meta = body.get("metadata") or {}
    if not isinstance(meta, dict):
        raise errors.bad_request("Eviction in version \"policy/v1\" cannot be handled as a Eviction: metadata must "
                                 "be an object")
    if meta.get("name") != name:
        raise errors.bad_request("name in URL does not match name in Eviction object")
    if meta.get("namespace") and meta["namespace"] != namespace:
        raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the "
                                 "request")
    opts = body.get("deleteOptions") or {}
    if not isinstance(opts, dict):
        raise errors.bad_request("couldn't decode DeleteOptions: expected a JSON object")
    body_dry = opts.get("dryRun") or []
    if not isinstance(body_dry, list) or any(v != "All" for v in body_dry):
        raise errors.bad_request(f'dryRun: Unsupported value: "{str(body_dry)[:64]}": supported values: "All"')
    pre = opts.get("preconditions") or {}
    if not isinstance(pre, dict):
        raise errors.bad_request("couldn't decode DeleteOptions: preconditions must be an object")
    grace = opts.get("gracePeriodSeconds")
    if grace is not None and (isinstance(grace, bool) or not isinstance(grace, int)):
        raise errors.bad_request("couldn't decode DeleteOptions: gracePeriodSeconds must be an integer")
    propagation = opts.get("propagationPolicy")
    orphan = opts.get("orphanDependents")
    if orphan is not None and propagation is not None:
        raise errors.invalid(kind="DeleteOptions", name="", causes=[(
            "propagationPolicy", f'Invalid value: "{propagation}": orphanDependents and deletionPropagation cannot '
                                 "be both set")])
    if orphan is not None:
        propagation = "Orphan" if orphan else "Background"
    return _Options(uid=str(pre.get("uid") or ""), rv=str(pre.get("resourceVersion") or ""), grace=grace,
                    propagation=propagation, dry_run=dry_run or bool(body_dry))


def _can_ignore_budgets(pod: dict[str, Any]) -> bool:
    """``canIgnorePDB``: nothing runs (Pending, finished) or the pod is already going."""
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Succeeded", "Failed", "Pending") or bool(pod["metadata"].get("deletionTimestamp"))


def _enforce_resource_version(pod: dict[str, Any]) -> bool:
    """A Pending pod is deleted only as read, so that it cannot become Ready in between."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


def _budgets_of(store: Store, namespace: str, pod: Entry) -> list[Entry]:
    """The budgets of the pod's namespace whose selector matches it (an invalid selector matches nothing)."""
    out = []
    for e in store.entries(PDBS, namespace):
        try:
            matcher = compile_selector((e.obj().get("spec") or {}).get("selector"))
        except SelectorError:
            continue
        if matcher(pod.labels):
            out.append(e)
    return out


def _still_processing(pdb_name: str) -> errors.ApiError:
    return _too_many_requests(retry_after=_STILL_PROCESSING_RETRY,
                              cause=f"The disruption budget {pdb_name} is still being processed by the server.")


def _too_many_requests(*, retry_after: int, cause: str) -> errors.ApiError:
    """``NewTooManyRequests`` with a ``DisruptionBudget`` cause."""
    details: dict[str, Any] = {"causes": [{"reason": "DisruptionBudget", "message": cause}]}
    if retry_after:
        details = {"retryAfterSeconds": retry_after, **details}
    return errors.ApiError(code=429, reason="TooManyRequests",
                           message="Cannot evict pod as it would violate the pod's disruption budget.",
                           details=details, headers={"Retry-After": str(retry_after)} if retry_after else None)


def _check_and_decrement(store: Store, ops: Operations, *, pdb_name: str, namespace: str, pod_name: str,
                         dry_run: bool) -> None:
    """Spend one disruption of the budget (or refuse), retrying its status update on conflict."""
    for _ in range(_CONFLICT_RETRIES):
        pdb = store.get(PDBS, namespace, pdb_name).obj()
        status = pdb.setdefault("status", {})
        if int(status.get("observedGeneration") or 0) < int(pdb["metadata"].get("generation") or 0):
            raise _still_processing(pdb_name)
        allowed = int(status.get("disruptionsAllowed") or 0)
        if allowed < 0:
            raise _forbidden(pdb_name, "pdb disruptions allowed is negative")
        if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_PODS:
            raise _forbidden(pdb_name, "DisruptedPods map too big - too many evictions not confirmed by PDB controller")
        if allowed == 0:
            raise _too_many_requests(retry_after=0, cause=(
                f"The disruption budget {pdb_name} needs {int(status.get('desiredHealthy') or 0)} healthy pods and "
                f"has {int(status.get('currentHealthy') or 0)} currently"))
        status["disruptionsAllowed"] = allowed - 1
        if allowed == 1:
            update_disruption_allowed_condition(status)
        if dry_run:
            return
        status["disruptedPods"] = {**(status.get("disruptedPods") or {}), pod_name: now_rfc3339()}
        try:
            ops.update(PDBS, pdb, namespace=namespace, name=pdb_name, subresource="status")
        except errors.ApiError as e:
            if e.code == 409:
                continue
            raise
        return
    raise errors.ApiError(code=504, reason="Timeout",
                          message=f'Timeout: couldn\'t update PodDisruptionBudget "{pdb_name}" due to conflicts',
                          details={"retryAfterSeconds": _STILL_PROCESSING_RETRY})


def _forbidden(pdb_name: str, why: str) -> errors.ApiError:
    return errors.forbidden(f'poddisruptionbudget.policy "{pdb_name}" is forbidden: {why}',
                            resource="poddisruptionbudget", group="policy", name=pdb_name)


def _add_condition_and_delete(store: Store, ops: Operations, namespace: str, name: str, options: _Options, *,
                              rv: str) -> None:
    """Mark the pod ``DisruptionTarget`` (unless dry run), then delete it with the eviction's options."""
    if not options.dry_run:
        current = store.get(PODS, namespace, name)
        if options.uid and options.uid != current.uid:
            raise errors.conflict(resource="Pod", name=name, cause=(
                f"the UID in the precondition ({options.uid}) does not match the UID in record ({current.uid}). "
                "The object might have been deleted and then recreated"))
        if rv and rv != str(current.rv):
            raise errors.conflict(resource="Pod", name=name, cause=(
                f"the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record "
                f"({current.rv}). The object might have been modified"))
        pod = current.obj()
        if _set_disruption_target(pod):
            updated = ops.update(PODS, pod, namespace=namespace, name=name, subresource="status")
            if rv:
                rv = str(updated.rv)  # the condition is this request's own write
    ops.delete(PODS, namespace=namespace, name=name, uid=options.uid, rv=rv, grace=options.grace,
               propagation=options.propagation, opts=WriteOptions(dry_run=options.dry_run))


def _set_disruption_target(pod: dict[str, Any]) -> bool:
    """``UpdatePodCondition`` with ``DisruptionTarget=True``; False when nothing changed."""
    status = pod.setdefault("status", {})
    conditions = status.setdefault("conditions", [])
    want = {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
            "message": "Eviction API: evicting"}
    for c in conditions:
        if c.get("type") == "DisruptionTarget":
            if all(c.get(k) == v for k, v in want.items()):
                return False
            if c.get("status") != "True":
                c["lastTransitionTime"] = now_rfc3339()
            c.update(want)
            return True
    conditions.append({**want, "lastProbeTime": None, "lastTransitionTime": now_rfc3339()})
    return True
