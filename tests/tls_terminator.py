"""A TLS terminator for self-tests: TLS (optionally demanding a client certificate) in front of a plain TCP server.

It stands where a TLS-terminating load balancer or an stunnel would, for servers whose own TLS the
sandbox cannot configure (tansu, the Kafka-protocol broker, has no client-certificate option). Each
connection's handshake runs in its own thread, blocking, so a refused client certificate gets the
server's alert (OpenSSL's, via Python's ``ssl``) before the connection closes, and never stops the
terminator. Bytes are forwarded both ways
unchanged.

``python -m tests.tls_terminator --listen P --to HOST:PORT --cert C --key K [--client-ca CA]``
prints ``ready`` once it listens. From a test, :func:`start_terminator` runs it as a child process.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:  # ssl.SSLError is one: a reset or an alert ends this direction
        pass
    finally:
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Terminator(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    context: ssl.SSLContext
    upstream: tuple[str, int]


class _Connection(socketserver.BaseRequestHandler):
    """One client: the handshake (blocking, so a refusal's alert is sent before the close), then both
    directions forwarded until either side closes."""

    server: _Terminator

    def handle(self) -> None:
        try:
            client = self.server.context.wrap_socket(self.request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # a refused client certificate: OpenSSL has sent the client its alert
        try:
            upstream = socket.create_connection(self.server.upstream, timeout=10)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
        back.start()
        _pipe(client, upstream)
        back.join()
        client.close()
        upstream.close()


def _serve(args: argparse.Namespace) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    if args.client_ca:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(args.client_ca)
    host, port = args.to.rsplit(":", 1)
    with _Terminator(("127.0.0.1", args.listen), _Connection) as server:
        server.context, server.upstream = context, (host, int(port))
        print("ready", flush=True)
        server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--to", required=True, help="HOST:PORT of the plain server")
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--client-ca", default=None, help="demand a client certificate from this CA")
    with contextlib.suppress(KeyboardInterrupt):
        _serve(parser.parse_args(argv))


@contextlib.contextmanager
def start_terminator(listen: int, to: str, cert: str, key: str, client_ca: str | None = None) -> Iterator[subprocess.Popen[str]]:
    """Run the terminator on 127.0.0.1:``listen`` until the block ends."""
    argv = [sys.executable, "-m", "tests.tls_terminator", "--listen", str(listen), "--to", to, "--cert", cert, "--key", key]
    if client_ca:
        argv += ["--client-ca", client_ca]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"tls terminator did not start (exit {proc.poll()})")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
