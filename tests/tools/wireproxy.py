#!/usr/bin/env python3
"""wireproxy.py — a loopback IMAP proxy that records what the client writes, in clear text.

mailret talks IMAP only over TLS (IMAPS, or STARTTLS before LOGIN), so a TCP proxy sees
ciphertext.  This one ends the client's TLS itself, with the test server's own certificate
and key (the client's verification against the test CA still passes), and opens its own
verified TLS session to the real server:

  --mode imaps     TLS from the first byte on both sides
  --mode starttls  plain on both sides until the server's tagged OK to the client's
                   STARTTLS; then both sides are upgraded, client side first

Per connection N it writes LOGDIR/conn-N.c2s (every byte the client sent, TLS removed)
and LOGDIR/conn-N.s2c (every byte the server sent).  Prints its port on the first line of
stdout (and to --port-file), serves until --lifetime seconds have passed or SIGTERM.

The logs hold the test user's password (LOGIN): a test's scratch directory only.

Standard library only.
"""
import argparse
import itertools
import os
import re
import select
import signal
import socket
import ssl
import sys
import threading
import time

CHUNK = 65536


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--target-host", default="localhost")
    p.add_argument("--target-port", type=int, required=True)
    p.add_argument("--mode", choices=["imaps", "starttls"], required=True)
    p.add_argument("--cert", required=True, help="certificate shown to the client")
    p.add_argument("--key", required=True)
    p.add_argument("--ca", required=True, help="CA that signed the real server's certificate")
    p.add_argument("--log-dir", required=True)
    p.add_argument("--lifetime", type=float, default=600)
    p.add_argument("--port-file")
    return p.parse_args()


class Relay:
    """One client connection and its server connection."""

    def __init__(self, args, n, client):
        self.args = args
        self.client = client
        self.c2s = open(os.path.join(args.log_dir, "conn-%d.c2s" % n), "wb")
        self.s2c = open(os.path.join(args.log_dir, "conn-%d.s2c" % n), "wb")
        self.server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server_ctx.load_cert_chain(args.cert, args.key)
        self.client_ctx = ssl.create_default_context(cafile=args.ca)
        self.starttls_tag = None
        self.cbuf = b""      # client bytes not yet ended by a line end (STARTTLS watch)
        self.sbuf = b""

    def tls_both(self):
        # The client starts its handshake once it has read the tagged OK; the server
        # waits for ours.  Upstream first, so the client's handshake finds us ready.
        # Handshakes block; relaying does not (see pump).
        self.server.settimeout(60)
        self.client.settimeout(60)
        self.server = self.client_ctx.wrap_socket(self.server,
                                                  server_hostname=self.args.target_host)
        self.client = self.server_ctx.wrap_socket(self.client, server_side=True)
        self.server.settimeout(0.0)
        self.client.settimeout(0.0)

    def run(self):
        try:
            self.server = socket.create_connection((self.args.target_host,
                                                    self.args.target_port), timeout=60)
            self.server.settimeout(None)
            if self.args.mode == "imaps":
                self.client.settimeout(60)
                self.client = self.server_ctx.wrap_socket(self.client, server_side=True)
                self.server.settimeout(60)
                self.server = self.client_ctx.wrap_socket(self.server,
                                                          server_hostname=self.args.target_host)
            self.server.settimeout(0.0)
            self.client.settimeout(0.0)
            self.pump()
        except (OSError, ssl.SSLError) as e:
            print("wireproxy: %s" % e, file=sys.stderr)
        finally:
            for s in (self.client, getattr(self, "server", None)):
                try:
                    if s is not None:
                        s.close()
                except OSError:
                    pass
            self.c2s.close()
            self.s2c.close()

    def pending(self, s):
        return isinstance(s, ssl.SSLSocket) and s.pending() > 0

    @staticmethod
    def send_all(sock, data):
        view = memoryview(data)
        while view:
            try:
                view = view[sock.send(view):]
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                select.select([sock], [sock], [], 1.0)

    def pump(self):
        # Non-blocking reads: a TLS socket can be readable with no application data in
        # it (a TLS 1.3 session ticket), and a blocking recv would then wait forever.
        while True:
            socks = [self.client, self.server]
            ready = [s for s in socks if self.pending(s)]
            if not ready:
                ready, _, _ = select.select(socks, [], [], 600)
                if not ready:
                    return
            for s in ready:
                try:
                    data = s.recv(CHUNK)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    continue
                if not data:
                    return
                if s is self.client:
                    self.c2s.write(data)
                    self.c2s.flush()
                    self.send_all(self.server, data)
                    self.watch_client(data)
                else:
                    self.s2c.write(data)
                    self.s2c.flush()
                    if self.watch_server(data):
                        return
                break   # the sockets may have changed (STARTTLS): look again

    def watch_client(self, data):
        if self.args.mode != "starttls" or isinstance(self.client, ssl.SSLSocket):
            return
        self.cbuf += data
        while b"\r\n" in self.cbuf:
            line, self.cbuf = self.cbuf.split(b"\r\n", 1)
            m = re.match(rb"^(\S+) STARTTLS$", line, re.I)
            if m:
                self.starttls_tag = m.group(1)

    def watch_server(self, data):
        """Forward server bytes; upgrade after the tagged OK to STARTTLS.  True = stop."""
        if self.starttls_tag is None or isinstance(self.client, ssl.SSLSocket):
            self.send_all(self.client, data)
            return False
        self.sbuf += data
        while b"\r\n" in self.sbuf:
            line, self.sbuf = self.sbuf.split(b"\r\n", 1)
            self.send_all(self.client, line + b"\r\n")
            if line.startswith(self.starttls_tag + b" "):
                if not re.match(rb"^\S+ OK\b", line, re.I):
                    self.starttls_tag = None
                    continue
                if self.sbuf:
                    return True   # bytes after the OK, before TLS: not ours to pass on
                self.tls_both()
                return False
        return False


def main():
    args = parse_args()
    os.makedirs(args.log_dir, exist_ok=True)
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    port = lsock.getsockname()[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, args.port_file)
    print(port, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    deadline = time.time() + args.lifetime
    counter = itertools.count(1)
    while time.time() < deadline:
        r, _, _ = select.select([lsock], [], [], 1.0)
        if not r:
            continue
        client, _ = lsock.accept()
        relay = Relay(args, next(counter), client)
        threading.Thread(target=relay.run, daemon=True).start()


if __name__ == "__main__":
    main()
