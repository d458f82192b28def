"""What every answer of a web surface carries and what every form post is checked against:
the security headers and the same-origin test. The cart's screens and the fleet desk both
use them, so one lesson learned reaches both."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from bottle import request

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# default-src 'self' forbids inline scripts and styles: every script and style is a file under
# /static. frame-ancestors and X-Frame-Options both refuse framing (clickjacking a console).
SECURITY_HEADERS = [
    ("Content-Security-Policy", "default-src 'self'; base-uri 'none'; form-action 'self'; "
                                "frame-ancestors 'none'"),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    # Not no-referrer: under it Chromium sends `Origin: null` on form posts, and the consoles
    # refuse POSTs whose Origin is not their own.
    ("Referrer-Policy", "same-origin"),
]


class _ErrorLog:
    """`wsgi.errors` into a log: bottle writes the traceback of a failed route there."""

    def __init__(self, log: logging.Logger) -> None:
        self.log = log

    def write(self, text: str) -> None:
        if text.strip():
            self.log.error("a web request failed:\n%s", text.rstrip())

    def flush(self) -> None:
        pass


def with_security_headers(app: WSGIApp, log: logging.Logger) -> WSGIApp:
    """Adds the security headers to every answer (error pages and redirects included) and
    sends bottle's tracebacks to `log` instead of stderr."""
    errors = _ErrorLog(log)

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        static = str(environ.get("PATH_INFO", "")).startswith("/static/")
        environ["wsgi.errors"] = errors

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            # Pages show live state (and form tokens): never from a cache. Static files may
            # be kept but are revalidated (their Last-Modified answers 304).
            headers = [h for h in headers if h[0].lower() != "cache-control"]
            headers += [*SECURITY_HEADERS, ("Cache-Control", "no-cache" if static else "no-store")]
            return start_response(status, headers, exc_info)
        return app(environ, start)
    return wrapped


def same_origin() -> bool:
    """A form post from this site: no Origin (an old browser), or one naming this host."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    host = request.headers.get("Host", "")
    return bool(host) and origin in (f"http://{host}", f"https://{host}")
