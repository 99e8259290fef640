"""uvicorn's HTTP protocol with one change: what the HTTP parser refuses is answered in the API's error shape.

A request line or headers past the parser's limits (a URL over about 64 KB, for one), or bytes that are not
HTTP, never reach the app: uvicorn answers 400 itself, in plain text. This subclass answers the same 400 as
``{"error": {"code": "bad_request", ...}}`` and closes the connection, as uvicorn does.
"""

from __future__ import annotations

import asyncio
from typing import Any

from shoprank.serving.errors import error_body


def with_json_errors(base: type[asyncio.Protocol]) -> type[asyncio.Protocol]:
    """A subclass of uvicorn's protocol class ``base`` whose parser-level 400 is JSON."""

    class JsonErrorProtocol(base):  # type: ignore[valid-type, misc]
        transport: Any
        server_state: Any

        def send_400_response(self, msg: str) -> None:
            body = error_body("bad_request", f"{msg.rstrip('.')}: the request line or headers could not be "
                              "parsed (too long, or not HTTP)")
            head = [b"HTTP/1.1 400 Bad Request\r\n"]
            head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
            head += [b"content-type: application/json\r\n", b"content-length: %d\r\n" % len(body),
                     b"connection: close\r\n\r\n"]
            self.transport.write(b"".join(head) + body)
            self.transport.close()

    JsonErrorProtocol.__name__ = f"JsonError{base.__name__}"
    return JsonErrorProtocol


def http_protocol(fast: bool) -> type[asyncio.Protocol]:
    """The protocol class to give ``uvicorn.Config(http=...)``: httptools' when installed, else h11's."""
    if fast:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        return with_json_errors(HttpToolsProtocol)
    from uvicorn.protocols.http.h11_impl import H11Protocol

    return with_json_errors(H11Protocol)


def __getattr__(name: str) -> type[asyncio.Protocol]:
    """The two protocol classes by name, for uvicorn's import strings in worker processes
    (``shoprank.serving.protocol:JsonHttpToolsProtocol``): a class made by a function cannot be pickled."""
    if name in ("JsonHttpToolsProtocol", "JsonH11Protocol"):
        return http_protocol(name == "JsonHttpToolsProtocol")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
