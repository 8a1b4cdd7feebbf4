"""NodeAffinity: a pod goes only where its ``spec.nodeSelector`` and required node
affinity allow, and prefers nodes matching its preferred terms (upstream's
nodeaffinity plugin with ``k8s.io/component-helpers/scheduling/corev1/nodeaffinity``).

Semantics, as upstream:
- ``spec.nodeSelector`` entries are ANDed equalities on node labels.
- Required ``nodeSelectorTerms`` are ORed; inside a term, ``matchExpressions`` and
  ``matchFields`` are ANDed. A term with neither matches nothing, and so does an
  empty term list. ``matchFields`` knows only ``metadata.name`` (``In``/``NotIn``
  with exactly one value); another field key reads as the empty string.
- ``In`` needs the label and one of the values; ``NotIn`` holds when the label is
  absent or has none of the values; ``Gt``/``Lt`` need the label and compare it as a
  Go ``strconv.ParseInt`` integer (a label that does not parse never matches).
- ``args.addedAffinity`` applies to every pod: its required selector is checked
  first (``node(s) didn't match scheduler-enforced node affinity``), its preferred
  terms add to every pod's score.
- PreFilter narrows the nodes to the names in ``matchFields metadata.name In``
  when every term names nodes; other nodes are reported as upstream's scheduler
  reports nodes left out by a PreFilterResult, and an empty intersection is
  ``pod affinity terms conflict``.
- Score is the sum of the weights of the matching preferred terms, normalised with
  DefaultNormalizeScore; with no preferred terms at all the plugin skips scoring.

Unlike upstream, which drops a term it cannot parse (the API server never lets
such a pod through), vecsched rejects a pod whose affinity does not parse, with a
message naming the field, so that a hand-written manifest is never silently
scheduled somewhere else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from scoring.args import ArgsError, known_fields, mapping
from scoring.batching import NODES, Signed
from scoring.framework import (CycleState, FilterPlugin, NodeOnlyFilter, NodeSubset, PreFilterPlugin, Reason,
                               ScorePlugin, default_normalize_score)
from scoring.objects import PodInfo
from scoring.table import BoolArray, IntArray, NodeTable, parse_go_int64, read_only
from scoring.safe_input import QUOTE_CHARS, quote

__all__ = [
    "NAME", "ERR_REASON_POD", "ERR_REASON_ENFORCED", "ERR_REASON_CONFLICT", "ERR_REASON_NOT_IN_NODE_NAMES",
    "Requirement", "FieldRequirement", "Term", "PreferredTerm", "PodAffinity", "NodeAffinity",
    "NodeSelectorReader", "selector_errors_message", "parse_pod", "parse_added_affinity", "term_mask", "terms_mask", "node_selector_mask", "preferred_score", "new",
]

NAME: Final = "NodeAffinity"
ERR_REASON_POD: Final = "node(s) didn't match Pod's node affinity/selector"
ERR_REASON_ENFORCED: Final = "node(s) didn't match scheduler-enforced node affinity"
ERR_REASON_CONFLICT: Final = "pod affinity terms conflict"
ERR_REASON_NOT_IN_NODE_NAMES: Final = f"node(s) didn't satisfy plugin(s) [{NAME}]"
"""What upstream's scheduler reports for nodes its PreFilterResult left out."""

OBJECT_NAME_FIELD: Final = "metadata.name"
_OPERATORS: Final = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")
_FIELD_OPERATORS: Final = ("In", "NotIn")
_STATE_KEY: Final = "PreFilter" + NAME

_POD_REQUIRED: Final = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
_POD_PREFERRED: Final = "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution"


# ---- parsing and validation (labels.NewRequirement, nodeSelectorRequirementsAs*) -----------


@dataclass(frozen=True, slots=True)
class Requirement:
    """One ``matchExpressions`` entry; ``number`` is the parsed value of ``Gt``/``Lt``."""

    key: str
    operator: str
    values: tuple[str, ...]
    number: int = 0


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    """One ``matchFields`` entry: ``In``/``NotIn`` with a single value."""

    key: str
    operator: str
    value: str


@dataclass(frozen=True, slots=True)
class Term:
    """A non-empty NodeSelectorTerm: every expression and every field must match."""

    expressions: tuple[Requirement, ...]
    fields: tuple[FieldRequirement, ...]


@dataclass(frozen=True, slots=True)
class PreferredTerm:
    weight: int
    term: Term


@dataclass(frozen=True, slots=True)
class PodAffinity:
    """A pod's node constraints, read once per scheduling cycle."""

    node_selector: Mapping[str, str]
    required: tuple[Term, ...] | None
    """None: no required node affinity; () matches no node."""
    preferred: tuple[PreferredTerm, ...] | None
    """None: no preferred list at all (upstream's PreScore then skips)."""
    node_names: frozenset[str] | None
    """PreFilterResult: the only nodes worth looking at, or None for all."""
    error: str | None
    """Why the affinity cannot be read, naming the field; the pod then fits nowhere."""


_QNAME_FMT: Final = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QNAME_MSG: Final = ("must consist of alphanumeric characters, '-', '_' or '.', "
                     "and must start and end with an alphanumeric character")
_DNS1123_FMT: Final = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_DNS1123_MSG: Final = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                       "'-' or '.', and must start and end with an alphanumeric character")
_LABEL_VALUE_FMT: Final = f"({_QNAME_FMT})?"
_LABEL_VALUE_MSG: Final = ("a valid label must be an empty string or consist of alphanumeric characters, "
                           "'-', '_' or '.', and must start and end with an alphanumeric character")
# labels.NewRequirement's details, word for word
_EMPTY_IN: Final = "for 'in', 'notin' operators, values set can't be empty"
_VALUES_WITH_EXISTS: Final = "values set must be empty for exists and does not exist"
_NOT_ONE_NUMBER: Final = "for 'Gt', 'Lt' operators, exactly one value is required"
_NOT_AN_INTEGER: Final = "for 'Gt', 'Lt' operators, the value must be an integer"
_QNAME_RE: Final = re.compile(_QNAME_FMT)
_DNS1123_RE: Final = re.compile(_DNS1123_FMT)
_LABEL_VALUE_RE: Final = re.compile(_LABEL_VALUE_FMT)


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    """Go's validation.RegexError, word for word."""
    out = msg + " (e.g. "
    for i, e in enumerate(examples):
        out += (" or " if i else "") + f"'{e}', "
    return out + f"regex used for validation is '{fmt}')"


def _label_key_errors(key: str) -> list[str]:
    """Go's validation.IsQualifiedName (label keys)."""
    errs: list[str] = []
    parts = key.split("/")
    if len(parts) > 2:
        return ["a qualified name " + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            if len(prefix.encode()) > 253:
                errs.append("prefix part must be no more than 253 characters")
            if _DNS1123_RE.fullmatch(prefix) is None:
                errs.append("prefix part " + _regex_error(_DNS1123_MSG, _DNS1123_FMT, "example.com"))
    if not name:
        errs.append("name part must be non-empty")
    elif len(name.encode()) > 63:
        errs.append("name part must be no more than 63 characters")
    if _QNAME_RE.fullmatch(name) is None:
        errs.append("name part " + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc"))
    return errs


def _label_value_errors(value: str) -> list[str]:
    """Go's validation.IsValidLabelValue."""
    errs: list[str] = []
    if len(value.encode()) > 63:
        errs.append("must be no more than 63 characters")
    if _LABEL_VALUE_RE.fullmatch(value) is None:
        errs.append(_regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def _go_repr(v: Any) -> str:
    """How Go's field.Error prints a bad value: %q for strings, %#v for string slices."""
    # Go prints the whole value; a long one is cut here, so that the error stays one short line.
    if isinstance(v, str):
        return json.dumps(v) if len(v) <= QUOTE_CHARS else f"{json.dumps(v[:QUOTE_CHARS])}... ({len(v):,} characters)"
    if isinstance(v, (list, tuple)):
        if not v:
            return "[]string(nil)"
        text = "[]string{" + ", ".join(_go_repr(x) if isinstance(x, str) else quote(x) for x in v[:4]) + "}"
        return text if len(v) <= 4 else f"{text[:-1]}, ... ({len(v):,} items)}}"
    return quote(v)


def _invalid(path: str, value: Any, detail: str) -> tuple[str, str]:
    return path, f"Invalid value: {_go_repr(value)}: {detail}"


class NodeSelectorReader:
    """Reads NodeSelector JSON, collecting (path, problem) errors instead of raising."""

    def __init__(self, *, strict: bool) -> None:
        self.strict = strict
        self.errors: list[tuple[str, str]] = []

    def obj(self, v: Any, path: str, fields: Sequence[str]) -> Mapping[str, Any]:
        if v is None:
            return {}
        if not isinstance(v, Mapping):
            self.errors.append((path, f"expected an object, got {type(v).__name__}"))
            return {}
        if self.strict:
            for k in v:
                if k not in fields:
                    self.errors.append((f"{path}.{k}", f"unknown field (known: {', '.join(sorted(fields))})"))
        return v

    def _list(self, v: Any, path: str) -> Sequence[Any]:
        if v is None:
            return ()
        if not isinstance(v, list):
            self.errors.append((path, f"expected a list, got {type(v).__name__}"))
            return ()
        return v

    def _str(self, v: Any, path: str) -> str:
        if v is None:
            return ""
        if not isinstance(v, str):
            self.errors.append((path, f"expected a string, got {quote(v)}"))
            return ""
        return v

    def _strs(self, v: Any, path: str) -> tuple[str, ...]:
        return tuple(self._str(x, f"{path}[{i}]") for i, x in enumerate(self._list(v, path)))

    def expression(self, raw: Any, path: str) -> Requirement | None:
        m = self.obj(raw, path, ("key", "operator", "values"))
        key, op = self._str(m.get("key"), f"{path}.key"), self._str(m.get("operator"), f"{path}.operator")
        values = self._strs(m.get("values"), f"{path}.values")
        before = len(self.errors)
        if op not in _OPERATORS:
            self.errors.append((f"{path}.operator", f"{_go_repr(op)} is not a valid node selector operator"))
            return None
        if key_errors := _label_key_errors(key):
            self.errors.append(_invalid(f"{path}.key", key, "; ".join(key_errors)))
        number = 0
        if op in ("In", "NotIn") and not values:
            self.errors.append(_invalid(f"{path}.values", values, _EMPTY_IN))
        elif op in ("Exists", "DoesNotExist") and values:
            self.errors.append(_invalid(f"{path}.values", values, _VALUES_WITH_EXISTS))
        elif op in ("Gt", "Lt"):
            if len(values) != 1:
                self.errors.append(_invalid(f"{path}.values", values, _NOT_ONE_NUMBER))
            for i, v in enumerate(values):
                parsed = parse_go_int64(v)
                if parsed is None:
                    self.errors.append(_invalid(f"{path}.values[{i}]", v, _NOT_AN_INTEGER))
                else:
                    number = parsed
        for i, v in enumerate(values):
            if errs := _label_value_errors(v):
                self.errors.append(_invalid(f"{path}.values[{i}][{key}]", v, "; ".join(errs)))
        return Requirement(key, op, values, number) if len(self.errors) == before else None

    def field(self, raw: Any, path: str) -> FieldRequirement | None:
        m = self.obj(raw, path, ("key", "operator", "values"))
        key, op = self._str(m.get("key"), f"{path}.key"), self._str(m.get("operator"), f"{path}.operator")
        values = self._strs(m.get("values"), f"{path}.values")
        if op not in _FIELD_OPERATORS:
            self.errors.append((f"{path}.operator", f"{_go_repr(op)} is not a valid node field selector operator"))
            return None
        if len(values) != 1:
            self.errors.append(_invalid(f"{path}.values", values, "must have one element"))
            return None
        return FieldRequirement(key, op, values[0])

    def term(self, raw: Any, path: str) -> Term | None:
        """A parsed term, or None for an empty term (which matches nothing)."""
        m = self.obj(raw, path, ("matchExpressions", "matchFields"))
        exprs = [self.expression(e, f"{path}.matchExpressions[{i}]")
                 for i, e in enumerate(self._list(m.get("matchExpressions"), f"{path}.matchExpressions"))]
        fields = [self.field(f, f"{path}.matchFields[{i}]")
                  for i, f in enumerate(self._list(m.get("matchFields"), f"{path}.matchFields"))]
        if not exprs and not fields:
            return None
        return Term(tuple(e for e in exprs if e is not None), tuple(f for f in fields if f is not None))

    def selector(self, raw: Any, path: str) -> tuple[Term, ...]:
        m = self.obj(raw, path, ("nodeSelectorTerms",))
        terms = (self.term(t, f"{path}.nodeSelectorTerms[{i}]")
                 for i, t in enumerate(self._list(m.get("nodeSelectorTerms"), f"{path}.nodeSelectorTerms")))
        return tuple(t for t in terms if t is not None)

    def preferred(self, raw: Any, path: str, *, max_weight: int) -> tuple[PreferredTerm, ...]:
        out = []
        for i, p in enumerate(self._list(raw, path)):
            m = self.obj(p, f"{path}[{i}]", ("weight", "preference"))
            w = m.get("weight", 0)
            if not isinstance(w, int) or isinstance(w, bool) or not 0 <= w <= max_weight:
                self.errors.append(_invalid(f"{path}[{i}].weight", w, f"must be in the range 0-{max_weight}"))
                continue
            if w == 0:  # upstream skips weight-0 terms without parsing them
                continue
            term = self.term(m.get("preference"), f"{path}[{i}].preference")
            if term is not None:
                out.append(PreferredTerm(w, term))
        return tuple(out)


def selector_errors_message(errors: Sequence[tuple[str, str]]) -> str:
    """Go's aggregate error text: one error as is, several as ``[a, b]``."""
    msgs = [f"{p}: {e}" for p, e in errors]
    return msgs[0] if len(msgs) == 1 else "[" + ", ".join(msgs) + "]"


def _node_names(raw_required: Any) -> frozenset[str] | None:
    """Upstream's PreFilter: the union over terms of the intersection of each term's
    ``metadata.name In`` values; None as soon as one term names no node."""
    names: set[str] = set()
    for t in raw_required.get("nodeSelectorTerms") or ():
        term_names: set[str] | None = None
        for r in (t or {}).get("matchFields") or ():
            if r.get("key") == OBJECT_NAME_FIELD and r.get("operator") == "In":
                s = set(r.get("values") or ())
                term_names = s if term_names is None else term_names & s
        if term_names is None:
            return None
        names |= term_names
    return frozenset(names)


def parse_pod(pod: PodInfo) -> PodAffinity:
    """Read a pod's nodeSelector and node affinity (upstream's GetRequiredNodeAffinity
    and getPodPreferredNodeAffinity)."""
    if pod.affinity.get("nodeAffinity") is None:  # most pods: what the reader below returns for them
        return PodAffinity(pod.node_selector, None, None, None, None)
    reader = NodeSelectorReader(strict=False)
    node_affinity = reader.obj(pod.affinity.get("nodeAffinity"), "spec.affinity.nodeAffinity", ())
    raw_required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    required = None if raw_required is None else reader.selector(raw_required, _POD_REQUIRED)
    raw_preferred = node_affinity.get("preferredDuringSchedulingIgnoredDuringExecution")
    preferred = None if raw_preferred is None else reader.preferred(raw_preferred, _POD_PREFERRED, max_weight=100)
    if reader.errors:
        return PodAffinity(pod.node_selector, required, preferred, None, selector_errors_message(reader.errors))
    names = None if not required else _node_names(raw_required)
    return PodAffinity(pod.node_selector, required, preferred, names, None)


def parse_added_affinity(
    args: Mapping[str, Any], path: str,
) -> tuple[tuple[Term, ...] | None, tuple[PreferredTerm, ...] | None]:
    """NodeAffinityArgs.addedAffinity: (required terms or None, preferred terms or None).
    Raises ArgsError naming the first invalid field, as upstream's ValidateNodeAffinityArgs."""
    args = mapping(args, path)
    known_fields(args, ("addedAffinity",), path)
    reader = NodeSelectorReader(strict=True)
    added = reader.obj(args.get("addedAffinity"), f"{path}.addedAffinity", (
        "requiredDuringSchedulingIgnoredDuringExecution", "preferredDuringSchedulingIgnoredDuringExecution"))
    raw_required = added.get("requiredDuringSchedulingIgnoredDuringExecution")
    required = None if raw_required is None else reader.selector(
        raw_required, f"{path}.addedAffinity.requiredDuringSchedulingIgnoredDuringExecution")
    raw_preferred = added.get("preferredDuringSchedulingIgnoredDuringExecution")
    preferred = reader.preferred(raw_preferred, f"{path}.addedAffinity.preferredDuringSchedulingIgnoredDuringExecution",
                                 max_weight=2**31 - 1)
    if reader.errors:
        raise ArgsError(*reader.errors[0])
    # Upstream keeps preferred terms only when the list is non-empty.
    return required, (preferred if raw_preferred else None)


# ---- vectorised matching ------------------------------------------------------------------


def _expression_mask(r: Requirement, table: NodeTable) -> BoolArray:
    """labels.Requirement.Matches over all nodes ``[:n]``."""
    col = table.labels.column(r.key)
    if r.operator in ("In", "NotIn"):
        codes = [c for v in r.values if (c := table.labels.code(r.key, v)) >= 0]
        hit = np.isin(col, codes) if codes else np.zeros(len(col), np.bool_)
        return hit if r.operator == "In" else ~hit
    if r.operator == "Exists":
        return col >= 0
    if r.operator == "DoesNotExist":
        return col < 0
    ints, ok = table.labels.int_values(r.key)  # slot -1 (absent label) is never ok
    if r.operator == "Gt":
        return ok[col] & (ints[col] > r.number)
    return ok[col] & (ints[col] < r.number)


def _field_mask(f: FieldRequirement, table: NodeTable) -> BoolArray:
    """fields.OneTerm(Not)EqualSelector on a node's fields: only ``metadata.name`` is set."""
    n = table.n
    if f.key == OBJECT_NAME_FIELD:
        hit = np.zeros(n, np.bool_)
        row = table.index.get(f.value)
        if row is not None:
            hit[row] = True
    else:
        hit = np.full(n, f.value == "", np.bool_)
    return hit if f.operator == "In" else ~hit


def term_mask(term: Term, table: NodeTable) -> BoolArray:
    """Nodes ``[:n]`` matching every expression and field of ``term``."""
    mask = np.ones(table.n, np.bool_)
    for r in term.expressions:
        mask &= _expression_mask(r, table)
    for f in term.fields:
        mask &= _field_mask(f, table)
    return mask


def terms_mask(terms: Sequence[Term], table: NodeTable) -> BoolArray:
    """Nodes ``[:n]`` matching any of ``terms`` (none when there are no terms)."""
    mask = np.zeros(table.n, np.bool_)
    for t in terms:
        mask |= term_mask(t, table)
    return mask


def node_selector_mask(selector: Mapping[str, str], table: NodeTable) -> BoolArray:
    """Nodes ``[:n]`` whose labels hold every ``key: value`` of ``spec.nodeSelector``."""
    mask = np.ones(table.n, np.bool_)
    for k, v in selector.items():
        code = table.labels.code(k, v)
        if code < 0:
            return np.zeros(table.n, np.bool_)
        mask &= table.labels.column(k) == code
    return mask


def preferred_score(terms: Sequence[PreferredTerm], table: NodeTable, nodes: npt.NDArray[np.intp] | slice) -> IntArray:
    """Sum of the weights of the terms each node in ``nodes`` (rows, or a slice of rows)
    matches (raw, 0..sum of weights)."""
    out = np.zeros(len(range(table.n)[nodes]) if isinstance(nodes, slice) else len(nodes), np.int64)
    for p in terms:
        out += p.weight * term_mask(p.term, table)[nodes]
    return out


# ---- the plugin ---------------------------------------------------------------------------


class NodeAffinity(NodeOnlyFilter):
    name: Final = NAME

    def __init__(self, *, added_required: tuple[Term, ...] | None = None,
                 added_preferred: tuple[PreferredTerm, ...] | None = None) -> None:
        self.added_required = added_required
        self.added_preferred = added_preferred

    def _affinity(self, pod: PodInfo, state: CycleState) -> PodAffinity:
        cached = state.get(_STATE_KEY)
        if not isinstance(cached, PodAffinity):
            cached = state[_STATE_KEY] = parse_pod(pod)
        return cached

    def sign_stamp(self, table: NodeTable) -> None:
        """Batching: ``sign`` reads the pod alone, nothing of the table."""
        return None

    def sign(self, pod: PodInfo, table: NodeTable) -> Signed:
        """Batching: every verdict and score depends on the node labels, the profile's added
        affinity and the pod's nodeSelector and node affinity."""
        return Signed(NODES, (repr(pod.node_selector), repr(pod.affinity.get("nodeAffinity"))))

    def prefilter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> str | NodeSubset | None:
        a = self._affinity(pod, state)
        if a.error is not None:
            return a.error
        if a.node_names is not None:
            # matchFields on metadata.name in every term: only those nodes are candidates
            return NodeSubset(frozenset(a.node_names)) if a.node_names else ERR_REASON_CONFLICT
        return None

    def filter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> Sequence[Reason] | None:
        a = self._affinity(pod, state)
        n = table.n
        rejected = self.prefilter(pod, table, state)
        if isinstance(rejected, str):  # when the profile did not run PreFilter
            return [Reason(rejected, np.ones(n, np.bool_), unresolvable=True)]
        if a.required is None and self.added_required is None and not a.node_selector:
            return None  # upstream's PreFilter Skip
        reasons = []
        left = np.ones(n, np.bool_)
        if a.node_names is not None:
            left = np.zeros(n, np.bool_)
            left[[r for name in a.node_names if (r := table.index.get(name)) is not None]] = True
            reasons.append(Reason(ERR_REASON_NOT_IN_NODE_NAMES, ~left, unresolvable=True))
        if self.added_required is not None:
            enforced = left & ~terms_mask(self.added_required, table)
            reasons.append(Reason(ERR_REASON_ENFORCED, enforced, unresolvable=True))
            left &= ~enforced
        ok = node_selector_mask(a.node_selector, table)
        if a.required is not None:
            ok &= terms_mask(a.required, table)
        reasons.append(Reason(ERR_REASON_POD, left & ~ok, unresolvable=True))
        return [r for r in reasons if r.nodes.any()]

    def score(self, pod: PodInfo, table: NodeTable, nodes: npt.NDArray[np.intp], state: CycleState) -> IntArray | None:
        a = self._affinity(pod, state)
        if a.error is not None or (a.preferred is None and self.added_preferred is None):
            return None  # upstream's PreScore Skip
        terms = (*(self.added_preferred or ()), *(a.preferred or ()))
        # Which nodes match the terms depends on the node labels alone: the raw score of
        # every node is kept per term list (replicas share one) until a node changes.
        raw = table.node_derived((NAME, terms), lambda: read_only(preferred_score(terms, table, slice(0, table.n))))
        return raw[nodes]

    def normalize(self, scores: IntArray, state: CycleState) -> IntArray:
        return default_normalize_score(scores)


def new(args: Mapping[str, Any], path: str) -> NodeAffinity:
    required, preferred = parse_added_affinity(args, path)
    return NodeAffinity(added_required=required, added_preferred=preferred)


_: type[FilterPlugin] = NodeAffinity
_s: type[ScorePlugin] = NodeAffinity
_p: type[PreFilterPlugin] = NodeAffinity
