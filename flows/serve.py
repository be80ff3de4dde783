"""`researchdesk serve [--port 8765] [--host 127.0.0.1]`: the reports folder over HTTP, read-only.

Why this exists: reports are self-contained HTML, but a browser opening `file://` pages of a remote
box, or a colleague on the same machine, wants a URL. Why it is this small: stdlib only
(ThreadingHTTPServer + SimpleHTTPRequestHandler), GET/HEAD only, nothing but `var/reports/`.

What it refuses, and why each check is here rather than trusting `translate_path` alone:
- binds 127.0.0.1 unless told otherwise; another host prints a one-line warning, because the
  reports then are readable by anyone who can reach the port;
- a request target that is not a plain absolute path (`http://x/...`, `*`), or whose percent-decoded
  path has a `..` segment, a backslash or a NUL (`../`, `%2e%2e/`, `..%2f`, `..\\`) is answered
  400: the stdlib silently normalises those into the folder, which hides an attack in the log;
- a path that resolves (symlinks followed) outside the reports folder is answered 404, so a stray
  symlink cannot publish `/etc` or `~/.aws`; `latest` -> a run folder inside it works as usual;
- every response carries `X-Content-Type-Options: nosniff`, a Content-Security-Policy without
  scripts (inline styles only: the reports' CSS is inline, charts are inline SVG), no referrer and
  no framing.
Issue 16 builds the fuller report site on top of `make_server`.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def unsafe_target(target: str) -> str | None:
    """Why the request target `target` is refused, or None when it is a plain path in the folder."""
    if not target.startswith("/") or target.startswith("//"):
        return "not a plain path"
    path = urlsplit(target).path
    decoded = unquote(path, errors="surrogatepass")
    if "\\" in decoded or "\x00" in decoded:
        return "backslash or NUL in path"
    if any(segment == ".." for segment in decoded.split("/")):
        return "'..' in path"
    return None


class ReportsHandler(SimpleHTTPRequestHandler):
    """Serves files under `directory` only, with the security headers on every response."""

    server_version = "researchdesk-serve"
    sys_version = ""  # the Python version is nobody's business

    def __init__(self, *args, directory: str, **kwargs) -> None:
        self.root = os.path.realpath(directory)
        super().__init__(*args, directory=self.root, **kwargs)

    def end_headers(self) -> None:
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        super().end_headers()

    def send_head(self):  # type: ignore[no-untyped-def]  # stdlib signature: file object or None
        reason = unsafe_target(self.path)
        if reason:
            self.send_error(HTTPStatus.BAD_REQUEST, f"refused: {reason}")
            return None
        real = os.path.realpath(self.translate_path(self.path))
        if real != self.root and not real.startswith(self.root + os.sep):
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")  # a symlink out of the folder
            return None
        return super().send_head()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib's name
        sys.stderr.write(f"serve: {self.address_string()} {format % args}\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # Ctrl-C does not wait for a browser's keep-alive connection


class _Server6(_Server):
    address_family = socket.AF_INET6


def make_server(root: Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> ThreadingHTTPServer:
    """A bound (not yet serving) server for `root`; port 0 picks a free port (tests)."""
    cls = _Server6 if ":" in host else _Server
    return cls((host, port), partial(ReportsHandler, directory=str(root)))


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the reports folder over HTTP on this machine (127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port (0: any free one)")
    p.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default: this machine only)")


def run_serve(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C; a missing reports folder or a port in use is one `error:` line (exit 2)."""
    from flows.settings import Settings
    from rag.errors import ConfigError

    root = Settings().reports_dir
    if not root.is_dir():
        raise ConfigError(f"reports folder {root.resolve()} does not exist; run `researchdesk run` first")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be 0-65535, not {args.port}")
    try:
        server = make_server(root, args.host, args.port)
    except (OSError, OverflowError) as exc:
        raise ConfigError(f"cannot listen on {args.host}:{args.port}: {exc}") from exc
    host, port = str(server.server_address[0]), int(server.server_address[1])
    if args.host not in LOCAL_HOSTS:
        print(f"warning: serving on {args.host}: anyone who can reach port {port} can read the reports",
              file=sys.stderr)
    shown = f"[{host}]" if ":" in host else host
    print(f"serving {root.resolve()} at http://{shown}:{port}/ (Ctrl-C stops)", flush=True)
    with server:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
    return 0
