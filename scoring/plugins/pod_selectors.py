"""Label selectors and pod (anti-)affinity terms, read once into hashable values.

PodTopologySpread and InterPodAffinity both ask "how many pods matching this
selector, in these namespaces, sit in each topology domain?". To answer that
from counters that are shared between pods (ten thousand replicas of one
Deployment carry the same selector), selectors must be values: this module
turns ``metav1.LabelSelector`` JSON into a frozen, canonical ``Selector`` (what
upstream's ``metav1.LabelSelectorAsSelector`` builds), and ``PodAffinityTerm``
JSON into a frozen ``AffinityTerm`` (upstream's ``framework.AffinityTerm``:
namespaces, namespace selector, label selector, topology key). A
``PodMatcher`` -- selector + namespace set -- is what a counter counts.

Semantics, as upstream's ``k8s.io/apimachinery/pkg/labels``:
- a nil selector matches nothing, an empty one (``{}``) everything;
- ``matchLabels`` entries are equalities; ``In`` needs the label with one of the
  values, ``NotIn`` holds when the label is absent or has none of them,
  ``Exists``/``DoesNotExist`` test presence; every requirement must hold;
- an unknown operator, ``In``/``NotIn`` without values, ``Exists``/``DoesNotExist``
  with values, or an invalid label key is an error naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from scoring.objects import PodInfo
from scoring.safe_input import PATH_CHARS, PROBLEM_CHARS, one_line, quote

__all__ = [
    "SelectorError", "Requirement", "Selector", "NOTHING", "EVERYTHING", "parse_selector", "merge_match_labels",
    "PodMatcher", "AllOf", "AffinityTerm", "WeightedTerm", "PodTerms", "parse_pod_terms", "has_pod_affinity",
    "go_aggregate", "parse_pod_terms_cached",
]

_OPERATORS: Final = ("In", "NotIn", "Exists", "DoesNotExist")
_NAME_RE: Final = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS1123_RE: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_VALUE_RE: Final = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


class SelectorError(ValueError):
    """A selector that upstream's LabelSelectorAsSelector refuses; ``field`` is its JSON path."""

    def __init__(self, field_path: str, problem: str) -> None:
        super().__init__(f"{one_line(field_path, PATH_CHARS)}: {one_line(problem, PROBLEM_CHARS)}")
        self.field = field_path
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    operator: str
    """In, NotIn, Exists or DoesNotExist (matchLabels entries are In with one value)."""
    values: frozenset[str]

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op == "In":
            v = labels.get(self.key)
            return v is not None and v in self.values
        if op == "NotIn":
            v = labels.get(self.key)
            return v is None or v not in self.values
        if op == "Exists":
            return self.key in labels
        return self.key not in labels


@dataclass(frozen=True, slots=True)
class Selector:
    """A canonical label selector: requirements sorted, duplicates removed."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False
    """upstream's labels.Nothing(): the nil selector, which matches no object."""

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.nothing:
            return False
        for r in self.requirements:
            if not r.matches(labels):
                return False
        return True

    @property
    def empty(self) -> bool:
        """upstream's Selector.Empty(): matches everything."""
        return not self.nothing and not self.requirements

    def add(self, *reqs: Requirement) -> Selector:
        """labels.Selector.Add (on Nothing too: the result then matches by ``reqs`` alone)."""
        return _make(list(self.requirements) + list(reqs))


NOTHING: Final = Selector((), True)
EVERYTHING: Final = Selector(())


def _make(reqs: Sequence[Requirement]) -> Selector:
    uniq = sorted(set(reqs), key=lambda r: (r.key, r.operator, sorted(r.values)))
    return Selector(tuple(uniq))


def _key_problem(key: str) -> str | None:
    """validation.IsQualifiedName, condensed: ``[prefix/]name``, name <= 63 chars."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS1123_RE.fullmatch(prefix)):
        return f"prefix part of {quote(key)} must be a lowercase RFC 1123 subdomain"
    if not name:
        return "name part must be non-empty"
    if len(name) > 63:
        return "name part must be no more than 63 characters"
    if not _NAME_RE.fullmatch(name):
        return ("name part must consist of alphanumeric characters, '-', '_' or '.', "
                "and must start and end with an alphanumeric character")
    return None


def _value_problem(v: Any) -> str | None:
    if not isinstance(v, str):
        return f"expected a string, got {quote(v)}"
    if len(v) > 63:
        return "must be no more than 63 characters"
    if not _VALUE_RE.fullmatch(v):
        return ("a valid label must be an empty string or consist of alphanumeric characters, "
                "'-', '_' or '.', and must start and end with an alphanumeric character")
    return None


def _requirement(key: Any, op: str, values: Any, path: str, values_path: str) -> Requirement:
    if not isinstance(key, str):
        raise SelectorError(f"{path}.key", f"expected a string, got {quote(key)}")
    problem = _key_problem(key)
    if problem:
        raise SelectorError(f"{path}.key", f"Invalid value: {quote(key)}: {problem}")
    if values is None:
        values = []
    if not isinstance(values, list):
        raise SelectorError(values_path, f"expected a list, got {type(values).__name__}")
    if op in ("In", "NotIn") and not values:
        raise SelectorError(values_path, "for 'in', 'notin' operators, values set can't be empty")
    if op in ("Exists", "DoesNotExist") and values:
        raise SelectorError(values_path, "values set must be empty for exists and does not exist")
    for i, v in enumerate(values):
        problem = _value_problem(v)
        if problem:
            raise SelectorError(f"{values_path}[{i}]", f"Invalid value: {quote(v)}: {problem}")
    return Requirement(key, op, frozenset(values))


def _quoted(v: Any) -> str:
    """Go's ``"%v"`` of a value, cut when long (a string past 100 characters, or not a string)."""
    return f'"{v}"' if isinstance(v, str) and len(v) <= 100 or v is None else quote(v)


def _cut(key: Any) -> str:
    """A label key as one element of an error's path: cut past 100 characters (real keys are
    rarely longer than 60)."""
    return key if isinstance(key, str) and len(key) <= 100 else quote(key)


def parse_selector(raw: Any, path: str) -> Selector:
    """metav1.LabelSelectorAsSelector: None -> NOTHING, ``{}`` -> EVERYTHING."""
    if raw is None:
        return NOTHING
    if not isinstance(raw, Mapping):
        raise SelectorError(path, f"expected an object, got {type(raw).__name__}")
    match_labels = raw.get("matchLabels") or {}
    exprs = raw.get("matchExpressions") or []
    if not isinstance(match_labels, Mapping):
        raise SelectorError(f"{path}.matchLabels", "expected an object")
    if not isinstance(exprs, list):
        raise SelectorError(f"{path}.matchExpressions", "expected a list")
    if not match_labels and not exprs:
        return EVERYTHING
    reqs = [_requirement(k, "In", [v], f"{path}.matchLabels[{_cut(k)}]", f"{path}.matchLabels.{_cut(k)}")
            for k, v in match_labels.items()]
    for i, e in enumerate(exprs):
        epath = f"{path}.matchExpressions[{i}]"
        if not isinstance(e, Mapping):
            raise SelectorError(epath, "expected an object")
        op = e.get("operator")
        if op not in _OPERATORS:
            raise SelectorError(f"{epath}.operator", f'{_quoted(op)} is not a valid label selector operator')
        reqs.append(_requirement(e.get("key"), op, e.get("values"), epath, f"{epath}.values"))
    return _make(reqs)


def merge_match_labels(selector: Selector, match: Mapping[str, str]) -> Selector:
    """PodTopologySpread's mergeLabelSetWithSelector: ``key=value`` for each entry of
    ``match`` plus the selector's requirements (none for NOTHING, as upstream's
    ``Requirements()`` reports none for it)."""
    reqs = [Requirement(k, "In", frozenset((v,))) for k, v in match.items()]
    return _make(reqs + list(selector.requirements))


# ---- what a counter counts -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PodMatcher:
    """Pods in ``namespaces`` (None: every namespace) whose labels match ``selector``.

    ``skip_terminating`` leaves out pods with a deletionTimestamp, as
    PodTopologySpread's countPodsMatchSelector does.
    """

    namespaces: frozenset[str] | None
    selector: Selector
    skip_terminating: bool = False

    def matches(self, pod: PodInfo) -> bool:
        if self.namespaces is not None and pod.namespace not in self.namespaces:
            return False
        if self.skip_terminating and _terminating(pod):
            return False
        return self.selector.matches(pod.labels)


@dataclass(frozen=True, slots=True)
class AllOf:
    """Pods matching every matcher (InterPodAffinity's podMatchesAllAffinityTerms)."""

    matchers: tuple[PodMatcher, ...]

    @property
    def namespaces(self) -> frozenset[str] | None:
        out: frozenset[str] | None = None
        for m in self.matchers:
            if m.namespaces is not None:
                out = m.namespaces if out is None else out & m.namespaces
        return out

    def matches(self, pod: PodInfo) -> bool:
        return all(m.matches(pod) for m in self.matchers)


def _terminating(pod: PodInfo) -> bool:
    meta = pod.raw.get("metadata") if isinstance(pod.raw, Mapping) else None
    return isinstance(meta, Mapping) and meta.get("deletionTimestamp") is not None


# ---- pod affinity terms ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AffinityTerm:
    """upstream's framework.AffinityTerm: a PodAffinityTerm read for the pod that carries it."""

    namespaces: frozenset[str]
    namespace_selector: Selector
    selector: Selector
    topology_key: str

    def matches(self, pod: PodInfo, ns_labels: Mapping[str, str] | None) -> bool:
        """AffinityTerm.Matches: ``pod`` is in the term's namespaces (listed, or chosen by the
        namespace selector from ``ns_labels``, the labels of ``pod``'s namespace) and its labels
        match the selector."""
        if pod.namespace in self.namespaces or self.namespace_selector.matches(ns_labels or {}):
            return self.selector.matches(pod.labels)
        return False

    def matcher(self, namespace_labels: Mapping[str, Mapping[str, str]]) -> PodMatcher:
        """The term of an *incoming* pod as a counter key: upstream's
        mergeAffinityTermNamespacesIfNotEmpty unrolls a non-empty namespace selector into
        the namespaces known now; an empty one (``{}``) means every namespace."""
        if self.namespace_selector.empty:
            return PodMatcher(None, self.selector)
        if self.namespace_selector.nothing:
            return PodMatcher(self.namespaces, self.selector)
        chosen = {ns for ns, labels in namespace_labels.items() if self.namespace_selector.matches(labels)}
        return PodMatcher(self.namespaces | chosen, self.selector)


@dataclass(frozen=True, slots=True)
class WeightedTerm:
    term: AffinityTerm
    weight: int


@dataclass(frozen=True, slots=True)
class PodTerms:
    """A pod's four kinds of pod (anti-)affinity terms (upstream's PodInfo fields)."""

    required_affinity: tuple[AffinityTerm, ...] = ()
    required_anti_affinity: tuple[AffinityTerm, ...] = ()
    preferred_affinity: tuple[WeightedTerm, ...] = ()
    preferred_anti_affinity: tuple[WeightedTerm, ...] = ()
    error: str | None = None
    """upstream's PodInfo.ParseError text, e.g. ``requiredAffinityTerms: <field>: <problem>``."""

    @property
    def empty(self) -> bool:
        return not (self.required_affinity or self.required_anti_affinity
                    or self.preferred_affinity or self.preferred_anti_affinity)


NO_TERMS: Final = PodTerms()


def has_pod_affinity(pod: PodInfo) -> bool:
    """upstream's podWithAffinity: the pod sets podAffinity or podAntiAffinity."""
    a = pod.affinity
    return bool(a) and (a.get("podAffinity") is not None or a.get("podAntiAffinity") is not None)


def _term(pod: PodInfo, raw: Any, path: str) -> AffinityTerm:
    if not isinstance(raw, Mapping):
        raise SelectorError(path, "expected an object")
    selector = parse_selector(raw.get("labelSelector"), f"{path}.labelSelector")
    # matchLabelKeys / mismatchLabelKeys: what the API server merges into the selector at
    # creation (KEP-3633); merging again is harmless, so pods from files behave the same.
    if raw.get("labelSelector") is not None:
        extra = []
        for field_name, op in (("matchLabelKeys", "In"), ("mismatchLabelKeys", "NotIn")):
            keys = raw.get(field_name) or []
            if not isinstance(keys, list):
                raise SelectorError(f"{path}.{field_name}", "expected a list")
            for key in keys:
                if isinstance(key, str) and key in pod.labels:
                    extra.append(Requirement(key, op, frozenset((pod.labels[key],))))
        if extra:
            selector = selector.add(*extra)
    raw_ns = raw.get("namespaces") or []
    if not isinstance(raw_ns, list) or not all(isinstance(n, str) for n in raw_ns):
        raise SelectorError(f"{path}.namespaces", "expected a list of strings")
    raw_ns_sel = raw.get("namespaceSelector")
    ns_selector = parse_selector(raw_ns_sel, f"{path}.namespaceSelector")
    # getNamespacesFromPodAffinityTerm: neither namespaces nor a selector -> the pod's own.
    namespaces = frozenset(raw_ns) if raw_ns or raw_ns_sel is not None else frozenset((pod.namespace,))
    key = raw.get("topologyKey", "")
    if not isinstance(key, str):
        raise SelectorError(f"{path}.topologyKey", f"expected a string, got {quote(key)}")
    return AffinityTerm(namespaces, ns_selector, selector, key)


def _list(raw: Any, path: str) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise SelectorError(path, f"expected a list, got {type(raw).__name__}")
    return raw


_KINDS: Final = ("requiredAffinity", "requiredAntiAffinity", "preferredAffinity", "preferredAntiAffinity")
"""upstream's order of PodInfo parse errors."""
_REQUIRED: Final = "requiredDuringSchedulingIgnoredDuringExecution"
_PREFERRED: Final = "preferredDuringSchedulingIgnoredDuringExecution"


def go_aggregate(msgs: Sequence[str]) -> str:
    """utilerrors.NewAggregate(...).Error(): one error as is, several as ``[a, b]``."""
    return msgs[0] if len(msgs) == 1 else "[" + ", ".join(msgs) + "]"


def parse_pod_terms(pod: PodInfo) -> PodTerms:
    """upstream's PodInfo.Update: each kind of term is parsed on its own; a kind with an
    invalid term is dropped whole (GetAffinityTerms returns nil) and the error recorded."""
    if not has_pod_affinity(pod):
        return NO_TERMS
    aff = pod.affinity
    out: dict[str, tuple[Any, ...]] = {}
    errors: dict[str, str] = {}
    for kind, block, base in (("podAffinity", "Affinity", "spec.affinity.podAffinity"),
                              ("podAntiAffinity", "AntiAffinity", "spec.affinity.podAntiAffinity")):
        section = aff.get(kind)
        if section is not None and not isinstance(section, Mapping):
            errors[f"required{block}"] = f"required{block}Terms: {base}: expected an object"
            continue
        section = section or {}
        try:
            req = _list(section.get(_REQUIRED), f"{base}.{_REQUIRED}")
            out[f"required{block}"] = tuple(_term(pod, t, f"{base}.{_REQUIRED}[{i}]") for i, t in enumerate(req))
        except SelectorError as e:
            errors[f"required{block}"] = f"required{block}Terms: {e}"
        try:
            pref = _list(section.get(_PREFERRED), f"{base}.{_PREFERRED}")
            terms = []
            for i, w in enumerate(pref):
                p = f"{base}.{_PREFERRED}[{i}]"
                if not isinstance(w, Mapping):
                    raise SelectorError(p, "expected an object")
                weight = w.get("weight")
                if not isinstance(weight, int) or isinstance(weight, bool):
                    raise SelectorError(f"{p}.weight", f"expected an integer, got {quote(weight)}")
                if not 1 <= weight <= 100:  # upstream's validation of WeightedPodAffinityTerm
                    raise SelectorError(f"{p}.weight", f"Invalid value: {quote(weight)}: must be in the range 1-100")
                terms.append(WeightedTerm(_term(pod, w.get("podAffinityTerm"), f"{p}.podAffinityTerm"), weight))
            out[f"preferred{block}"] = tuple(terms)
        except SelectorError as e:
            errors[f"preferred{block}"] = f"preferred{block}Terms: {e}"
    return PodTerms(
        required_affinity=out.get("requiredAffinity", ()),
        required_anti_affinity=out.get("requiredAntiAffinity", ()),
        preferred_affinity=out.get("preferredAffinity", ()),
        preferred_anti_affinity=out.get("preferredAntiAffinity", ()),
        error=go_aggregate([errors[k] for k in _KINDS if k in errors]) if errors else None,
    )


_TERMS_CACHE: dict[tuple[object, ...], PodTerms] = {}
_TERMS_CACHE_LIMIT: Final = 4096


def parse_pod_terms_cached(pod: PodInfo) -> PodTerms:
    """``parse_pod_terms`` memoised on what the result depends on: the affinity JSON, the
    namespace (default term namespaces) and, with match/mismatchLabelKeys, the labels.
    Replicas of a Deployment share one parse. Results are immutable."""
    if not has_pod_affinity(pod):
        return NO_TERMS
    text = repr(pod.affinity)
    key = (text, pod.namespace, frozenset(pod.labels.items()) if "LabelKeys" in text else None)
    hit = _TERMS_CACHE.get(key)
    if hit is None:
        if len(_TERMS_CACHE) > _TERMS_CACHE_LIMIT:
            _TERMS_CACHE.clear()
        hit = _TERMS_CACHE[key] = parse_pod_terms(pod)
    return hit
