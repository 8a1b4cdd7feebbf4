"""Which resource names count as what, as kube-scheduler decides it.

NodeResourcesFit and NodeResourcesBalancedAllocation treat a resource by its
*name*: cpu, memory and ephemeral-storage are fields of upstream's
``framework.Resource``; every other name is kept only if it is a "scalar"
resource (an extended resource such as ``nvidia.com/gpu``, hugepages, a
``kubernetes.io/``-prefixed native resource or an attachable-volumes count),
and ``ignoredResources`` applies to extended resources only. These predicates
are upstream's ``v1helper`` ones, and ``qualified_name_errors`` is
apimachinery's ``IsQualifiedName``, which both the predicates and the args
validation rely on.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "qualified_name_errors",
    "is_prefixed_native",
    "is_native",
    "is_extended",
    "is_hugepages",
    "is_attachable_volume",
    "is_scalar",
]

_DEFAULT_NAMESPACE_PREFIX: Final = "kubernetes.io/"
_REQUESTS_PREFIX: Final = "requests."
_HUGEPAGES_PREFIX: Final = "hugepages-"
_ATTACHABLE_VOLUMES_PREFIX: Final = "attachable-volumes-"

_QUALIFIED_NAME_MAX: Final = 63
_DNS1123_SUBDOMAIN_MAX: Final = 253
_QUALIFIED_NAME: Final = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS1123_SUBDOMAIN: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QUALIFIED_NAME_MSG: Final = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_MSG: Final = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character"
)


def qualified_name_errors(value: str) -> list[str]:
    """apimachinery's IsQualifiedName: ``[prefix/]name``, prefix a DNS-1123
    subdomain, name at most 63 characters of ``[-A-Za-z0-9_.]`` with alphanumeric ends.
    Returns upstream's messages (empty when valid)."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        elif len(prefix) > _DNS1123_SUBDOMAIN_MAX:
            errs.append(f"prefix part must be no more than {_DNS1123_SUBDOMAIN_MAX} characters")
        elif not _DNS1123_SUBDOMAIN.fullmatch(prefix):
            errs.append(f"prefix part {_DNS1123_MSG}")
    else:
        return [f"a qualified name {_QUALIFIED_NAME_MSG} with an optional DNS subdomain prefix "
                "and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > _QUALIFIED_NAME_MAX:
        errs.append(f"name part must be no more than {_QUALIFIED_NAME_MAX} characters")
    if not _QUALIFIED_NAME.fullmatch(name):
        errs.append(f"name part {_QUALIFIED_NAME_MSG}")
    return errs


def is_prefixed_native(name: str) -> bool:
    """``kubernetes.io/...`` or ``*.kubernetes.io/...``."""
    return _DEFAULT_NAMESPACE_PREFIX in name


def is_native(name: str) -> bool:
    """No domain at all (``cpu``, ``hugepages-2Mi``) or a kubernetes.io domain."""
    return "/" not in name or is_prefixed_native(name)


def is_extended(name: str) -> bool:
    """A vendor resource such as ``nvidia.com/gpu``: not native, and valid as a quota key."""
    if is_native(name) or name.startswith(_REQUESTS_PREFIX):
        return False
    return not qualified_name_errors(_REQUESTS_PREFIX + name)


def is_hugepages(name: str) -> bool:
    return name.startswith(_HUGEPAGES_PREFIX)


def is_attachable_volume(name: str) -> bool:
    return name.startswith(_ATTACHABLE_VOLUMES_PREFIX)


def is_scalar(name: str) -> bool:
    """Upstream's schedutil.IsScalarResourceName: the names ``framework.Resource``
    keeps besides cpu, memory, ephemeral-storage and pods."""
    return is_extended(name) or is_hugepages(name) or is_prefixed_native(name) or is_attachable_volume(name)
