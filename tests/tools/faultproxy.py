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

Configuration by argv, or environment FAULTPROXY_TARGET_HOST, FAULTPROXY_TARGET_PORT,
FAULTPROXY_MODE, FAULTPROXY_AFTER, FAULTPROXY_DELAY, FAULTPROXY_LIFETIME.  Prints the
listening port on the first line of stdout (and to --port-file if given), then serves until
LIFETIME seconds have passed (default 120) or SIGTERM, and exits by itself.

Standard library only.
"""
import argparse
import os
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
    a = p.parse_args()
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
                readable, _, _ = select.select(socks, [], [], 0.5)
                if self.client in readable:
                    data = self.client.recv(CHUNK)
                    if not data:
                        break
                    self.server.sendall(data)
                if self.server in readable:
                    data = self.server.recv(CHUNK)
                    if not data:
                        break
                    if not self.forward(data):
                        return
        except OSError:
            pass
        self.close()

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
