"""What vecsched's HTTPS servers (the extender, the admission webhook) share about a request
they refuse early: an HTTP status with a one-line reason, and a request body read within a limit."""

from __future__ import annotations

from aiohttp import web

__all__ = ["Reply", "read_bounded"]


class Reply(Exception):
    """Ends a request early with an HTTP error ``status`` and a one-line ``message``; each server
    renders it its own way (the extender as ``{"Error": ...}``, the webhook as an AdmissionReview
    or a ``Status``)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def read_bounded(request: web.Request, *, limit: int, owner: str) -> bytes:
    """The request's body, or ``Reply(413)`` when it is larger than ``limit`` bytes (told by its
    Content-Length, or found while reading one sent without it)."""
    too_big = Reply(413, f"request body is larger than the {owner}'s limit of {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_big
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise too_big from None
