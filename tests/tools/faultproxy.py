#!/usr/bin/env python3
"""faultproxy.py — a loopback TCP proxy that breaks the server->client direction on purpose.

Sits between a client (mailret) and a real server (the Dovecot test instance) and, per
connection, after the server has sent AFTER bytes to the client:

  pass      forward everything (the default; useful as a control)
  cut       close both sides cleanly (FIN): the client sees EOF mid-stream
  reset     close with TCP RST (SO_LINGER 0): the client sees ECONNRESET
  stall     stop forwarding but keep the connection open: the client must time out
  delay     sleep DELAY seconds before every later chunk (slow server)
  corrupt   flip every bit of the byte at offset AFTER (TLS must notice)

--replace OLD NEW (repeatable) rewrites server->client bytes before the fault applies,
e.g. --replace STARTTLS STARTTLZ to strip a capability like an active attacker would.

--tls-cert FILE --tls-key FILE make the proxy end TLS on both sides (the client's TLS with
that certificate, a new TLS connection to the target), so that it sees the IMAP
protocol of an IMAPS session; only for loopback tests with the test server's own
certificate.  --record-client FILE appends every client->server byte (after TLS) to FILE.

--down-after-puts N is for an HTTP object store behind the proxy: when the client starts
its (N+1)th PUT request (counted over all connections), the proxy goes away before passing
it on: every connection is closed and nothing listens any more, as when the store goes
down in the middle of an upload.

--throttle REGEX answers like Exchange Online when it throttles a client: the first
--throttle-times (default 1) commands whose text after the tag matches REGEX get
"TAG NO Request is throttled. Suggested Backoff Time: MS milliseconds" (--backoff-ms).
--throttle-mode before: the command never reaches the server (as for a refused STORE);
mid: it does, the first --throttle-after untagged responses to it are passed on, then the
NO replaces the rest of its response (a FETCH cut off part-way).  Counted over all
connections.

Configuration by argv, or environment FAULTPROXY_TARGET_HOST, FAULTPROXY_TARGET_PORT,
FAULTPROXY_MODE, FAULTPROXY_AFTER, FAULTPROXY_DELAY, FAULTPROXY_LIFETIME.  Prints the
listening port on the first line of stdout (and to --port-file if given), then serves until
LIFETIME seconds have passed (default 120) or SIGTERM, and exits by itself.

Standard library only.
"""
import argparse
import os
import re
import ssl
import select
import signal
import socket
import struct
import sys
import threading
import time

CHUNK = 16384


def parse_args():
    env = os.environ.get
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--target-host", default=env("FAULTPROXY_TARGET_HOST", "127.0.0.1"))
    p.add_argument("--target-port", type=int, default=int(env("FAULTPROXY_TARGET_PORT", "0")))
    p.add_argument("--listen-port", type=int, default=0)
    p.add_argument("--mode", default=env("FAULTPROXY_MODE", "pass"),
                   choices=["pass", "cut", "reset", "stall", "delay", "corrupt"])
    p.add_argument("--after", type=int, default=int(env("FAULTPROXY_AFTER", "0")),
                   help="server->client bytes forwarded before the fault")
    p.add_argument("--delay", type=float, default=float(env("FAULTPROXY_DELAY", "1.0")))
    p.add_argument("--lifetime", type=float, default=float(env("FAULTPROXY_LIFETIME", "120")))
    p.add_argument("--replace", nargs=2, action="append", default=[], metavar=("OLD", "NEW"))
    p.add_argument("--port-file")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--record-client")
    p.add_argument("--throttle")
    p.add_argument("--throttle-mode", choices=["before", "mid"], default="before")
    p.add_argument("--throttle-after", type=int, default=0)
    p.add_argument("--throttle-times", type=int, default=1)
    p.add_argument("--backoff-ms", type=int, default=1000)
    p.add_argument("--down-after-puts", type=int, default=-1)
    a = p.parse_args()
    if bool(a.tls_cert) != bool(a.tls_key):
        p.error("--tls-cert and --tls-key go together")
    if not 0 < a.target_port < 65536:
        p.error("--target-port (or FAULTPROXY_TARGET_PORT) is required")
    return a


class Conn:
    """One proxied connection: a client socket and its server socket."""

    def __init__(self, args, client, server):
        self.args = args
        self.client = client
        self.server = server
        self.sent = 0            # server->client bytes forwarded so far
        self.corrupted = False
        self.done = threading.Event()
        self.cbuf = b""          # client bytes not yet forwarded (throttle: whole lines)
        self.sbuf = b""          # server bytes not yet split into responses (throttle)
        self.cut_tag = None      # mid-throttle: the tag whose response is replaced
        self.cut_seen = 0        # its untagged responses passed on so far
        self.swallow = False     # dropping the rest of that response

    def close(self, rst=False):
        if self.done.is_set():
            return
        self.done.set()
        if rst:
            try:
                self.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            except OSError:
                pass
        for s in (self.client, self.server):
            try:
                s.close()
            except OSError:
                pass

    def run(self):
        """Both directions in one thread with select(): a close() then really closes (a
        recv blocked in another thread would keep the socket open and hide the fault)."""
        socks = [self.client, self.server]
        try:
            while not self.done.is_set():
                # TLS may hold decrypted bytes that select() cannot see.
                pending = [s for s in socks if isinstance(s, ssl.SSLSocket) and s.pending()]
                readable = pending or select.select(socks, [], [], 0.5)[0]
                if self.client in readable:
                    data = self.client.recv(CHUNK)
                    if not data:
                        break
                    record_client(self.args, data)
                    if self.args.down_after_puts >= 0:
                        count_puts(self.args, data)
                    if self.args.throttle:
                        self.from_client(data)
                    else:
                        self.server.sendall(data)
                if self.server in readable:
                    data = self.server.recv(CHUNK)
                    if not data:
                        break
                    if self.args.throttle:
                        if not self.from_server(data):
                            return
                    elif not self.forward(data):
                        return
        except (OSError, ssl.SSLError):
            pass
        self.close()

    # ---- throttle: an IMAP-aware path (whole lines and literals) ----

    def throttled_line(self, tag):
        return ("%s NO Request is throttled. Suggested Backoff Time: %d milliseconds\r\n"
                % (tag, self.args.backoff_ms)).encode()

    def from_client(self, data):
        """Client lines go on whole; a matching command may be answered NO here."""
        self.cbuf += data
        while b"\r\n" in self.cbuf:
            line, self.cbuf = self.cbuf.split(b"\r\n", 1)
            parts = line.split(b" ", 1)
            if len(parts) == 2 and re.match(self.args.throttle, parts[1].decode("latin-1"),
                                            re.I) and take_throttle(self.args):
                tag = parts[0].decode("latin-1")
                THROTTLE_LOG.append(parts[1].decode("latin-1"))
                if self.args.throttle_mode == "before":
                    self.client.sendall(self.throttled_line(tag))
                    continue
                self.cut_tag, self.cut_seen, self.swallow = tag, 0, False
            self.server.sendall(line + b"\r\n")

    def from_server(self, data):
        """Server responses split at their ends (a literal's bytes belong to its line)."""
        self.sbuf += data
        while True:
            end, pos = None, 0
            while True:
                i = self.sbuf.find(b"\r\n", pos)
                if i < 0:
                    break
                m = re.search(rb"\{(\d+)\+?\}$", self.sbuf[pos:i])
                if m is None:
                    end = i + 2
                    break
                pos = i + 2 + int(m.group(1))
                if pos > len(self.sbuf):
                    break
            if end is None:
                return True
            unit, self.sbuf = self.sbuf[:end], self.sbuf[end:]
            if self.cut_tag is not None:
                if unit.startswith((self.cut_tag + " ").encode()):
                    tag, self.cut_tag = self.cut_tag, None
                    sent_no, self.swallow = self.swallow, False
                    if sent_no:
                        continue    # the real completion: the NO went out already
                    unit = self.throttled_line(tag)
                elif self.swallow:
                    continue
                elif unit.startswith(b"* "):
                    if self.cut_seen >= self.args.throttle_after:
                        self.swallow = True
                        if not self.forward(self.throttled_line(self.cut_tag)):
                            return False
                        continue
                    self.cut_seen += 1
            if not self.forward(unit):
                return False

    def forward(self, data):
        """Server->client bytes; returns False once the connection was broken on purpose."""
        a = self.args
        for old, new in a.replace:
            data = data.replace(old.encode(), new.encode())
        mode = a.mode
        if mode == "corrupt" and self.corrupted:
            mode = "pass"
        if mode == "pass" or (mode != "delay" and self.sent + len(data) <= a.after):
            self.client.sendall(data)
            self.sent += len(data)
            return True
        keep = max(0, a.after - self.sent)
        if mode == "corrupt":
            b = bytearray(data)
            b[keep] ^= 0xFF
            self.corrupted = True
            self.client.sendall(bytes(b))
            self.sent += len(b)
            return True
        if mode == "delay":
            if self.sent + len(data) > a.after:
                time.sleep(a.delay)
            self.client.sendall(data)
            self.sent += len(data)
            return True
        # cut / reset / stall: forward up to the limit, then break the connection.
        if keep:
            self.client.sendall(data[:keep])
            self.sent += keep
        if mode == "stall":
            self.done.wait()      # hold both sockets open until the proxy exits
            return False
        self.close(rst=(mode == "reset"))
        return False


THROTTLE_LOCK = threading.Lock()
THROTTLE_LOG = []          # commands that were throttled (for the summary on exit)
RECORD_LOCK = threading.Lock()


def take_throttle(args):
    with THROTTLE_LOCK:
        if args.throttle_times <= 0:
            return False
        args.throttle_times -= 1
        return True


PUT_LOCK = threading.Lock()
PUTS = [0]


def count_puts(args, data):
    """The store goes down at the (N+1)th PUT: the whole process ends at once, so that
    every socket closes and later connections are refused."""
    with PUT_LOCK:
        PUTS[0] += data.count(b"PUT /")
        if PUTS[0] > args.down_after_puts:
            sys.stdout.flush()
            os._exit(0)


def record_client(args, data):
    if args.record_client:
        with RECORD_LOCK, open(args.record_client, "ab") as f:
            f.write(data)


def tls_wrap(args, client, server):
    """End TLS on both sides: the client's with the given certificate, the server's as a
    client that trusts anything (the target is the loopback test server)."""
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(args.tls_cert, args.tls_key)
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.check_hostname = False
    cctx.verify_mode = ssl.CERT_NONE
    client.settimeout(10)
    server.settimeout(10)
    client = sctx.wrap_socket(client, server_side=True)
    server = cctx.wrap_socket(server, server_hostname="localhost")
    client.settimeout(None)
    server.settimeout(None)
    return client, server


def serve(args):
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", args.listen_port))
    lsock.listen(16)
    port = lsock.getsockname()[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, args.port_file)
    sys.stdout.write("%d\n" % port)
    sys.stdout.flush()

    deadline = time.monotonic() + args.lifetime
    conns = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        lsock.settimeout(min(left, 0.5))
        try:
            client, _ = lsock.accept()
        except socket.timeout:
            continue
        except OSError:
            break
        try:
            server = socket.create_connection((args.target_host, args.target_port), timeout=10)
            server.settimeout(None)
        except OSError:
            client.close()
            continue
        for s in (client, server):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if args.tls_cert:
            try:
                client, server = tls_wrap(args, client, server)
            except (OSError, ssl.SSLError):
                client.close()
                server.close()
                continue
        c = Conn(args, client, server)
        conns.append(c)
        threading.Thread(target=c.run, daemon=True).start()
    for c in conns:
        c.close()
    lsock.close()


def main():
    args = parse_args()
    # SIGTERM ends the proxy at once (daemon threads die with the process).
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    serve(args)


if __name__ == "__main__":
    main()
