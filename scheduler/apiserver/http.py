"""The HTTP face of the API server: URL routing, verbs, lists, watches and discovery.

Everything a client sees on the wire is decided here: which path names which
resource, which verb an HTTP method is, how a list is paged and serialised,
how a watch streams newline-delimited JSON events with bookmarks and
timeouts, and that every failure is a ``Status`` body. The handlers are thin:
object semantics live in ``operations`` (writes reach it through ``admitted``,
which calls the admission webhooks), storage and fan-out in ``store``.
TokenReviews and SubjectAccessReviews are answered by ``reviews``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote

import yaml
from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http import HttpVersion11
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from . import errors, fieldvalidation, protobuf, resources
from .admitted import AdmittedOperations
from .auth import Attributes, Authorizer, User
from .eviction import evict
from .faults import Faults
from .limits import loads_json, safe_yaml_load
from .openapi import openapi_v3_group, openapi_v3_index
from .operations import Operations, WriteOptions
from .resourcemetrics import METRICS_CONTENT_TYPE
from .resources import ResourceType
from .reviews import openapi_v3_review_group, openapi_v3_reviews, review
from .selectors import parse_field_selector, parse_label_selector
from .store import Store, Watcher, dumps
from .tables import table, wants_table

__all__ = ["HttpApi", "MAX_BODY_BYTES"]

log = logging.getLogger("vecsched.apiserver")

MAX_BODY_BYTES: Final = 3 * 1024 * 1024  # kube-apiserver's MaxRequestBodyBytes
# Longest header line accepted: aiohttp's default (8190 bytes) is short for some bearer tokens.
_MAX_FIELD_SIZE: Final = 65536
_DEFAULT_WATCH_TIMEOUT: Final = 1800.0  # kube-apiserver's --min-request-timeout
_FUTURE_RV_WAIT: Final = 3.0  # the watch cache's wait for a resourceVersion it has not reached
_PUBLIC: Final = frozenset({"/healthz", "/readyz", "/livez", "/version"})
_JSON: Final = "application/json"
# What request bodies may be written in, and what answers are written in.
_BODY_TYPES: Final = ("application/json", "application/yaml", protobuf.MEDIA_TYPE + " (for built-in kinds)")
_VERBS: Final = {"POST": "create", "PUT": "update", "PATCH": "patch"}
_ANSWER_TYPES: Final = ("application/json", "application/json;as=Table;v=v1;g=meta.k8s.io")
# Subresources whose create carries another kind than the resource's: (group, version, kind) for webhooks.
_OTHER_KINDS: Final = {"binding": ("", "v1", "Binding"), "eviction": ("policy", "v1", "Eviction")}
_BOUND: Final = dumps(errors.success_status(code=201))  # every successful binding's answer, encoded once


@dataclass
class _Target:
    rt: ResourceType
    namespace: str
    name: str
    subresource: str
    watch_path: bool = False
    legacy_bindings: bool = False
    user: User | None = None
    """Who asked (None on a server without authentication): what admission webhooks are told."""


class HttpApi:
    """Builds the aiohttp application over one store."""

    def __init__(
        self,
        *,
        store: Store,
        ops: Operations,
        authorizer: Authorizer,
        faults: Faults,
        bookmark_interval: float,
        watch_coalesce: float = 0.005,
        max_body: int = MAX_BODY_BYTES,
    ) -> None:
        self.store = store
        self.ops = ops
        self.admitted = AdmittedOperations(ops=ops)
        self.authorizer = authorizer
        self.faults = faults
        self.bookmark_interval = bookmark_interval
        self.watch_coalesce = watch_coalesce
        self.max_body = max_body
        self.address = "127.0.0.1:0"
        self.requests = 0
        self.future_rv_wait = _FUTURE_RV_WAIT
        """Seconds a watch from a resourceVersion not reached yet waits for it before the 504."""
        self.node_metrics: Callable[[str], str] | None = None
        """A node's kubelet resource metrics (Prometheus text), served through the node proxy path."""
        self.cluster_metrics: Callable[[], str] | None = None
        """Every simulated node's resource metrics in one document, served at ``/metrics/nodes``."""
        self.anonymous_metrics: dict[str, Callable[[], str]] = {}
        """Path -> Prometheus text served to anyone, like ``/healthz`` (the simulated node-exporter series)."""

    def server(self) -> web.Server:
        """aiohttp's low-level server, every request to ``_dispatch`` (call it in the serving loop).

        No ``web.Application``: ``_route`` reads every path itself, so a router with one catch-all
        route and the application's middleware chain would only add their cost to every request.
        What the application did besides is done here: bodies are limited to ``max_body`` (413),
        header lines to 64 KiB, and ``Expect: 100-continue`` is answered.
        """
        loop = asyncio.get_running_loop()
        max_body = self.max_body

        def make_request(message: RawRequestMessage, payload: StreamReader, protocol: RequestHandler,
                         writer: AbstractStreamWriter, task: asyncio.Task[None]) -> web.Request:
            return web.Request(message, payload, protocol, writer, task, loop, client_max_size=max_body)

        return web.Server(self._serve, request_factory=make_request, access_log=None,
                          max_field_size=_MAX_FIELD_SIZE)

    # ---- entry -----------------------------------------------------------------------------

    async def _serve(self, request: web.BaseRequest) -> web.StreamResponse:
        assert isinstance(request, web.Request)  # what make_request builds
        if request.headers.get("Expect"):
            await _expect(request)
        return await self._dispatch(request)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        try:
            return await self._route(request)
        except errors.ApiError as e:
            return _status_response(e)
        except web.HTTPRequestEntityTooLarge:
            return _status_response(errors.too_large(self.max_body))
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as e:  # never crash on input: answer 500 and keep serving
            log.exception("internal error serving %s %s", request.method, request.path)
            return _status_response(errors.internal_error(f"{type(e).__name__}: {e}"))

    async def _route(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        user = self._authenticate(request, path)
        if path in _PUBLIC:
            if path == "/version":
                return _json_response(dumps(resources.VERSION_INFO))
            return web.Response(text="ok", content_type="text/plain")
        render = self.anonymous_metrics.get(path)
        if render is not None:
            if request.method not in ("GET", "HEAD"):
                raise errors.method_not_allowed()
            return _metrics_response(render())
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts[:3] == ["api", "v1", "nodes"] and len(parts) > 4 and parts[4] == "proxy":
            return self._node_proxy(request, parts, user)
        if path == "/metrics/nodes" and self.cluster_metrics is not None:
            if user is not None:
                self.authorizer.check(user, Attributes(verb="get", path=path))
            return _metrics_response(self.cluster_metrics())
        if parts[0] not in ("api", "apis") or len(parts) <= (3 if parts[0] == "apis" else 2):
            return await self._discovery(request, path, parts, user)
        if parts[0] == "apis" and len(parts) == 4:
            review_type = resources.create_only(parts[1], parts[2], parts[3])
            if review_type is not None:
                return await self._review(request, review_type, user)
        target = self._resolve(parts)
        return await self._resource(request, target, user)

    def _authenticate(self, request: web.Request, path: str) -> User | None:
        if not self.authorizer.enabled:
            return None
        user = self.authorizer.authenticate(request.headers.get("Authorization"))
        if user is None and path not in _PUBLIC and path not in self.anonymous_metrics:
            raise errors.unauthorized()
        return user

    def _node_proxy(self, request: web.Request, parts: list[str], user: User | None) -> web.StreamResponse:
        """``/api/v1/nodes/<node>/proxy/metrics/resource``: the simulated kubelet's resource metrics."""
        node = parts[3]
        if user is not None:
            self.authorizer.check(user, Attributes(verb=request.method.lower(), resource="nodes",
                                                   subresource="proxy", name=node))
        if request.method != "GET":
            raise errors.method_not_allowed()
        if parts[5:] != ["metrics", "resource"] or self.node_metrics is None:
            raise _no_resource()
        return _metrics_response(self.node_metrics(node))

    async def _review(self, request: web.Request, rt: resources.CreateOnly, user: User | None) -> web.StreamResponse:
        """A TokenReview or SubjectAccessReview: answered at once, never stored (``reviews.py``)."""
        if request.method != "POST":
            raise errors.method_not_allowed()
        if user is not None:
            self.authorizer.check(user, Attributes(verb="create", group=rt.group, resource=rt.plural))
        _negotiate(request.headers.get("Accept", ""))
        body = await self._decode(request)
        return _json_response(dumps(review(authorizer=self.authorizer, plural=rt.plural, body=body)), status=201)

    # ---- discovery -------------------------------------------------------------------------

    async def _discovery(self, request: web.Request, path: str, parts: list[str], user: User | None) -> web.StreamResponse:
        if user is not None:
            self.authorizer.check(user, Attributes(verb=request.method.lower(), path=path))
        if request.method != "GET":
            raise errors.method_not_allowed()
        body: Any = None
        registry = self.store.registry
        if path == "/openapi/v3":
            body = openapi_v3_index(registry)
            body["paths"].update(openapi_v3_reviews())
        elif path.startswith("/openapi/v3/"):
            gv = parts[2:]
            if gv[:1] == ["api"] and len(gv) == 2:
                body = openapi_v3_group(registry, "", gv[1])
            elif gv[:1] == ["apis"] and len(gv) == 3:
                body = openapi_v3_group(registry, gv[1], gv[2]) or openapi_v3_review_group(gv[1], gv[2])
        elif path == "/api":
            body = resources.api_versions(server_address=self.address)
        elif path == "/apis":
            body = registry.api_group_list()
        elif parts[0] == "api" and len(parts) == 2:
            body = registry.resource_list(group="", version=parts[1])
        elif parts[0] == "apis" and len(parts) == 2:
            body = registry.api_group(parts[1])
        elif parts[0] == "apis" and len(parts) == 3:
            body = registry.resource_list(group=parts[1], version=parts[2])
        if body is None:
            raise errors.ApiError(code=404, reason="NotFound", message="the server could not find the requested resource",
                                  details={})
        return _json_response(dumps(body))

    # ---- resources -------------------------------------------------------------------------

    def _resolve(self, parts: list[str]) -> _Target:
        if parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        else:
            group, version, rest = parts[1], parts[2], parts[3:]
        registry = self.store.registry
        if not registry.serves(group, version):
            raise _no_resource()
        watch_path = False
        if rest and rest[0] == "watch":
            watch_path, rest = True, rest[1:]
        namespace = ""
        if len(rest) >= 3 and rest[0] == "namespaces":
            if rest[2] == "bindings" and group == "" and len(rest) == 3:
                return _Target(resources.builtin("pods"), rest[1], "", "binding", legacy_bindings=True)
            candidate = registry.by_path(group, version, rest[2])
            if candidate is not None and candidate.namespaced:
                namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise _no_resource()
        rt = registry.by_path(group, version, rest[0])
        if rt is None:
            raise _no_resource()
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        if namespace and not rt.namespaced:
            raise _no_resource()
        if name and rt.namespaced and not namespace:
            raise _no_resource()
        if sub and sub not in rt.subresources:
            raise _no_resource()
        return _Target(rt, namespace, name, sub, watch_path=watch_path)

    async def _resource(self, request: web.Request, t: _Target, user: User | None) -> web.StreamResponse:
        q = request.query
        method = request.method
        watch = t.watch_path or q.get("watch", "").lower() in ("1", "true")
        verb = _verb(method, bool(t.name) or t.legacy_bindings, watch)
        if verb is None:
            raise errors.method_not_allowed()
        if t.subresource in ("binding", "eviction") and verb != "create":
            raise errors.method_not_allowed()
        if user is not None:
            self.authorizer.check(user, Attributes(
                verb=verb, group=t.rt.group, resource=t.rt.plural, subresource=t.subresource,
                namespace=t.namespace, name=t.name))
        t.user = user
        decision = self.faults.decide(watch=watch)
        if decision.delay:
            await asyncio.sleep(decision.delay)
        if decision.code == 500:
            raise errors.internal_error("injected fault (vecsched apiserver fault injection)")
        if decision.code == 429:
            raise errors.too_many_requests(self.faults.retry_after_seconds)
        _negotiate(request.headers.get("Accept", ""))
        handler: Callable[[web.Request, _Target], Awaitable[web.StreamResponse]] = getattr(self, f"_{verb}")
        return await handler(request, t)

    def _write_options(self, request: web.Request) -> WriteOptions:
        """``dryRun`` and ``fieldValidation`` of a write request."""
        q = request.query
        dry = q.getall("dryRun", [])
        for value in dry:
            if value != "All":
                raise errors.bad_request(f'dryRun: Unsupported value: "{value[:64]}": supported values: "All"')
        verb = _VERBS.get(request.method, "create")
        return WriteOptions(dry_run=bool(dry),
                            field_validation=fieldvalidation.parse_field_validation(q.get("fieldValidation"), verb=verb))

    async def _get(self, request: web.Request, t: _Target) -> web.StreamResponse:
        if t.subresource == "scale":
            return _json_response(dumps(self.ops.get_scale(t.rt, namespace=t.namespace, name=t.name)))
        entry = self.store.get(t.rt, t.namespace, t.name)
        if wants_table(request.headers.get("Accept", "")):
            tab = table(t.rt, [entry.obj()], rv=str(entry.rv), include_object=request.query.get("includeObject", "Metadata"))
            return _json_response(dumps(tab))
        return _json_response(entry.raw)

    def _selectors(self, request: web.Request, t: _Target) -> tuple[Any, Any]:
        labels = parse_label_selector(request.query.get("labelSelector", ""))
        fields = parse_field_selector(request.query.get("fieldSelector", ""), supported=tuple(t.rt.field_paths))
        return labels, fields

    async def _list(self, request: web.Request, t: _Target) -> web.StreamResponse:
        labels, fields = self._selectors(request, t)
        limit = _int_param(request, "limit", 0)
        if limit < 0:
            raise errors.bad_request(f"limit must be non-negative, got {limit}")
        res = self.store.list(t.rt, namespace=t.namespace, labels=labels, fields=fields, limit=limit,
                              continue_token=request.query.get("continue", ""))
        if wants_table(request.headers.get("Accept", "")):
            tab = table(t.rt, [e.obj() for e in res.items], rv=str(res.rv), continue_token=res.continue_token,
                        include_object=request.query.get("includeObject", "Metadata"))
            return _json_response(dumps(tab))
        meta: dict[str, Any] = {"resourceVersion": str(res.rv)}
        if res.continue_token:
            meta["continue"] = res.continue_token
            if res.remaining:
                meta["remainingItemCount"] = res.remaining
        head = (b'{"kind":"' + t.rt.list_kind.encode() + b'","apiVersion":"' + t.rt.api_version.encode()
                + b'","metadata":' + dumps(meta) + b',"items":[')
        return _json_response(head + b",".join(e.raw for e in res.items) + b"]}")

    async def _watch(self, request: web.Request, t: _Target) -> web.StreamResponse:
        q = request.query
        labels, fields = self._selectors(request, t)
        rv_text = q.get("resourceVersion", "")
        send_initial = q.get("sendInitialEvents", "").lower() == "true"
        bookmarks = q.get("allowWatchBookmarks", "").lower() in ("1", "true")
        try:
            since = None if rv_text in ("", "0") or send_initial else int(rv_text)
        except ValueError:
            raise errors.bad_request(f"invalid resource version: {rv_text!r}") from None
        timeout = float(_int_param(request, "timeoutSeconds", 0)) or _DEFAULT_WATCH_TIMEOUT
        if self.faults.watch_close_seconds:
            timeout = min(timeout, self.faults.watch_close_seconds)
        as_table = wants_table(request.headers.get("Accept", ""))
        if since is not None and since > self.store.resource_version:
            # The watch cache waits up to 3 s for a resourceVersion it has not seen yet, then gives up.
            loop = asyncio.get_running_loop()
            give_up = loop.time() + self.future_rv_wait
            while since > self.store.resource_version and loop.time() < give_up:
                await asyncio.sleep(0.05)
            if since > self.store.resource_version:
                raise errors.too_large_resource_version(since, self.store.resource_version)
        start_rv = self.store.resource_version
        try:
            watcher = self.store.watch(t.rt, namespace=t.namespace, labels=labels, fields=fields, since=since)
        except errors.ApiError as e:
            if e.code != 410:
                raise
            # A too-old resourceVersion is reported in-stream, as the real server does.
            resp = await _start_stream(request)
            await resp.write(b'{"type":"ERROR","object":' + e.body() + b"}\n")
            await resp.write_eof()
            return resp
        resp = await _start_stream(request)
        try:
            initial_end = watcher.queue.qsize() if send_initial else -1
            await self._pump(request, resp, t, watcher, timeout=timeout, bookmarks=bookmarks, as_table=as_table,
                             initial_end=initial_end, start_rv=start_rv)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.store.stop_watch(watcher)
        try:
            await resp.write_eof()
        except (ConnectionResetError, RuntimeError):
            pass
        return resp

    async def _pump(
        self, request: web.Request, resp: web.StreamResponse, t: _Target, watcher: Watcher, *, timeout: float, bookmarks: bool,
        as_table: bool, initial_end: int, start_rv: int,
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        next_bookmark = loop.time() + self.bookmark_interval
        first_table = True
        sent = 0
        if initial_end == 0:
            await resp.write(self._bookmark(t.rt, rv=start_rv, initial_end=True))
        while True:
            now = loop.time()
            if now >= deadline:
                if bookmarks and watcher.queue.empty():
                    await resp.write(self._bookmark(t.rt))
                return
            wait = min(deadline, next_bookmark) - now if bookmarks else deadline - now
            # Wake at least every second to notice a client that went away while nothing happened.
            if not await watcher.queue.wait(min(wait, 1.0)):
                if request.transport is None or request.transport.is_closing():
                    return
                if bookmarks and loop.time() >= next_bookmark:
                    await resp.write(self._bookmark(t.rt))
                    next_bookmark = loop.time() + self.bookmark_interval
                continue
            if self.watch_coalesce and watcher.queue.qsize() < 64:
                # Let a burst accumulate: one socket write per few ms instead of one per event
                # (on small VMs every wake-up of the reading process costs hundreds of microseconds).
                await asyncio.sleep(self.watch_coalesce)
            batch = watcher.queue.drain(2000)
            chunks: list[bytes] = []
            for item in batch:
                if item is None:
                    if chunks:
                        await resp.write(b"".join(chunks))
                    return
                if as_table:
                    tab = table(t.rt, [json.loads(item.raw)], rv=str(item.rv), with_columns=first_table)
                    first_table = False
                    chunks.append(b'{"type":"' + item.type.encode() + b'","object":' + dumps(tab) + b"}\n")
                else:
                    chunks.append(item.line())
                sent += 1
                if sent == initial_end:
                    chunks.append(self._bookmark(t.rt, rv=start_rv, initial_end=True))
            await resp.write(b"".join(chunks))

    def _bookmark(self, rt: ResourceType, *, rv: int = 0, initial_end: bool = False) -> bytes:
        """A BOOKMARK: every event up to ``rv`` (default: now, valid when the queue is drained) was sent."""
        meta: dict[str, Any] = {"resourceVersion": str(rv or self.store.resource_version)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return dumps({"type": "BOOKMARK", "object": {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}}) + b"\n"

    async def _read_body(self, request: web.Request) -> bytes:
        length = request.content_length
        if length is not None and length > self.max_body:
            raise errors.too_large(self.max_body)
        payload = request.content
        if payload.is_eof():
            # All of it arrived with the headers (as small bodies do): taken at once, without
            # ``read()``'s loop of reads; the limit is checked as ``read()`` checks it.
            body = payload.read_nowait()
            if len(body) > self.max_body:
                raise errors.too_large(self.max_body)
            return body
        return await request.read()

    async def _decode(self, request: web.Request, opts: WriteOptions | None = None) -> Any:
        """The request body as a JSON value, whatever it was sent as; repeated JSON keys go to ``opts``."""
        body = await self._read_body(request)
        ctype = request.content_type or _JSON
        try:
            if ctype == protobuf.MEDIA_TYPE:
                return protobuf.decode(body)
            if ctype in ("application/yaml", "application/x-yaml"):
                return safe_yaml_load(body, max_bytes=self.max_body)
            if ctype not in (_JSON, "application/octet-stream", "text/plain"):
                raise errors.unsupported_media_type(ctype, accepted=_BODY_TYPES)
            value, dups = fieldvalidation.loads_checked(body)
            if opts is not None:
                opts.duplicates.extend(dups)
            return value
        except (ValueError, yaml.YAMLError) as e:
            if not body.strip():
                raise errors.bad_request("the body of the request was empty") from None
            raise errors.bad_request(f"couldn't get version/kind; json parse error: {str(e)[:200]}") from None

    async def _create(self, request: web.Request, t: _Target) -> web.StreamResponse:
        opts = self._write_options(request)
        body = await self._decode(request, opts)
        if t.subresource in _OTHER_KINDS:
            body = await self.admitted.admit_create(t.rt, body, kind=_OTHER_KINDS[t.subresource], namespace=t.namespace,
                                                    name=t.name, subresource=t.subresource, opts=opts, user=t.user)
        if t.subresource == "binding":
            self.ops.bind(body, namespace=t.namespace, name=None if t.legacy_bindings else t.name)
            return _json_response(_BOUND, status=201, warnings=opts.warnings)
        if t.subresource == "eviction":
            status = evict(store=self.store, ops=self.ops, namespace=t.namespace, name=t.name, body=body,
                           dry_run=opts.dry_run)
            return _json_response(dumps(status), status=201, warnings=opts.warnings)
        if t.name:
            raise errors.method_not_allowed()
        entry = await self.admitted.create(t.rt, body, namespace=t.namespace, opts=opts, user=t.user)
        return _json_response(entry.raw, status=201, warnings=opts.warnings)

    async def _update(self, request: web.Request, t: _Target) -> web.StreamResponse:
        opts = self._write_options(request)
        body = await self._decode(request, opts)
        if t.subresource == "scale":
            scale = await self.admitted.update_scale(t.rt, namespace=t.namespace, name=t.name, body=body, opts=opts,
                                                     user=t.user)
            return _json_response(dumps(scale), warnings=opts.warnings)
        before = self.store.find(t.rt, t.namespace, t.name)
        entry = await self.admitted.update(t.rt, body, namespace=t.namespace, name=t.name, subresource=t.subresource,
                                          opts=opts, user=t.user)
        return _json_response(entry.raw, status=201 if before is None else 200, warnings=opts.warnings)

    async def _patch(self, request: web.Request, t: _Target) -> web.StreamResponse:
        body = await self._read_body(request)
        opts = self._write_options(request)
        if t.subresource == "scale":
            scale = await self.admitted.patch_scale(t.rt, content_type=request.content_type, body=body,
                                                    namespace=t.namespace, name=t.name, opts=opts,
                                                    max_bytes=self.max_body, user=t.user)
            return _json_response(dumps(scale), warnings=opts.warnings)
        before = self.store.find(t.rt, t.namespace, t.name)
        entry = await self.admitted.patch(t.rt, content_type=request.content_type, body=body, namespace=t.namespace,
                                          name=t.name, subresource=t.subresource, opts=opts, max_bytes=self.max_body,
                                          user=t.user)
        return _json_response(entry.raw, status=201 if before is None else 200, warnings=opts.warnings)

    async def _delete_options(self, request: web.Request) -> tuple[dict[str, Any], WriteOptions]:
        """DeleteOptions from the body and the query (the query's values win, as upstream)."""
        raw = await self._read_body(request)
        opts: dict[str, Any] = {}
        if raw.strip():
            try:
                decoded = protobuf.decode(raw) if request.content_type == protobuf.MEDIA_TYPE else loads_json(raw)
            except ValueError as e:
                raise errors.bad_request(f"couldn't decode DeleteOptions: {str(e)[:200]}") from None
            if not isinstance(decoded, dict):
                raise errors.bad_request("couldn't decode DeleteOptions: expected a JSON object")
            opts = decoded
        q = request.query
        if "gracePeriodSeconds" in q:
            opts["gracePeriodSeconds"] = _int_param(request, "gracePeriodSeconds", 0)
        if "propagationPolicy" in q:
            opts["propagationPolicy"] = q["propagationPolicy"]
        if "orphanDependents" in q:
            opts["orphanDependents"] = q["orphanDependents"].lower() == "true"
        dry = list(opts.get("dryRun") or []) + q.getall("dryRun", [])
        for value in dry:
            if value != "All":
                raise errors.bad_request(f'dryRun: Unsupported value: "{str(value)[:64]}": supported values: "All"')
        grace = opts.get("gracePeriodSeconds")
        if grace is not None and (isinstance(grace, bool) or not isinstance(grace, int)):
            raise errors.bad_request("couldn't decode DeleteOptions: gracePeriodSeconds must be an integer")
        policy = opts.get("propagationPolicy")
        orphan = opts.get("orphanDependents")
        if orphan is not None and policy is not None:
            raise errors.invalid(kind="DeleteOptions", name="", causes=[
                ("propagationPolicy", "Invalid value: \"" + str(policy) + "\": orphanDependents and "
                                      "deletionPropagation cannot be both set")])
        if orphan is not None:
            opts["propagationPolicy"] = "Orphan" if orphan else "Background"
        return opts, WriteOptions(dry_run=bool(dry))

    async def _delete(self, request: web.Request, t: _Target) -> web.StreamResponse:
        opts, wopts = await self._delete_options(request)
        pre = opts.get("preconditions") or {}
        if not isinstance(pre, dict):
            raise errors.bad_request("couldn't decode DeleteOptions: preconditions must be an object")
        obj = await self.admitted.delete(t.rt, namespace=t.namespace, name=t.name, uid=str(pre.get("uid") or ""),
                                         rv=str(pre.get("resourceVersion") or ""), grace=opts.get("gracePeriodSeconds"),
                                         propagation=opts.get("propagationPolicy"), opts=wopts, user=t.user)
        # 202 Accepted while the deletion waits for a grace period or finalizers, as kube-apiserver answers.
        pending = bool(obj["metadata"].get("deletionTimestamp")) and self.store.find(t.rt, t.namespace, t.name) is not None
        return _json_response(dumps(obj), status=202 if pending and not wopts.dry_run else 200, warnings=wopts.warnings)

    async def _deletecollection(self, request: web.Request, t: _Target) -> web.StreamResponse:
        labels, fields = self._selectors(request, t)
        opts, wopts = await self._delete_options(request)
        items = await self.admitted.delete_collection(t.rt, namespace=t.namespace, labels=labels, fields=fields,
                                                      grace=opts.get("gracePeriodSeconds"),
                                                      propagation=opts.get("propagationPolicy"), opts=wopts,
                                                      user=t.user)
        body = {"kind": t.rt.list_kind, "apiVersion": t.rt.api_version,
                "metadata": {"resourceVersion": str(self.store.resource_version)}, "items": items}
        return _json_response(dumps(body), warnings=wopts.warnings)


async def _expect(request: web.Request) -> None:
    """Answer an ``Expect`` header before the body is read, as ``web.Application`` does: ``100
    Continue`` for ``100-continue`` (HTTP/1.1), 417 for any other expectation."""
    expect = request.headers.get("Expect", "")
    if request.version == HttpVersion11:
        if expect.lower() != "100-continue":
            raise web.HTTPExpectationFailed(text=f"Unknown Expect: {expect}")
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the answer proper has not started
    await request.writer.drain()


def _verb(method: str, named: bool, watch: bool) -> str | None:
    if method == "GET":
        return "watch" if watch else ("get" if named else "list")
    if method == "POST":
        return "create"
    if method == "PUT":
        return "update" if named else None
    if method == "PATCH":
        return "patch" if named else None
    if method == "DELETE":
        return "delete" if named else "deletecollection"
    return None


def _int_param(request: web.Request, name: str, default: int) -> int:
    text = request.query.get(name)
    if text in (None, ""):
        return default
    try:
        return int(text)
    except ValueError:
        raise errors.bad_request(f"invalid value for {name}: {text!r} is not an integer") from None


def _no_resource() -> errors.ApiError:
    return errors.ApiError(code=404, reason="NotFound", message="the server could not find the requested resource", details={})


def _json_response(body: bytes, *, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    resp = web.Response(body=body, status=status, content_type=_JSON)
    for w in warnings or ():
        resp.headers.add("Warning", errors.warning_value(w))
    return resp


def _metrics_response(text: str) -> web.Response:
    return web.Response(body=text.encode(), headers={"Content-Type": METRICS_CONTENT_TYPE})


def _negotiate(accept: str) -> None:
    """Refuse (406) an ``Accept`` header that names no media type the server answers in.

    Every answer is JSON (or a JSON Table); a client that also accepts JSON gets it
    even when it prefers protobuf (client-go reads the response's Content-Type).
    """
    if not accept.strip():
        return
    for part in accept.split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media in ("*/*", "application/*", _JSON, "application/json-patch+json", "application/merge-patch+json"):
            return
    raise errors.not_acceptable(_ANSWER_TYPES)


def _status_response(e: errors.ApiError) -> web.Response:
    return web.Response(body=e.body(), status=e.code, content_type=_JSON, headers=e.headers)


async def _start_stream(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(status=200)
    resp.content_type = _JSON
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    return resp

