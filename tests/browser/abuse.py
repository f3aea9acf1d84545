#!/usr/bin/env python3
"""abuse.py PORT FILE - 200 concurrent connections to the dashboard on
127.0.0.1:PORT, most of them slow or malformed, then check that the
server and the mount (FILE, a file in it) still answer.

Holds at once: 60 clients that send half a request and wait, 40 that send
garbage, 20 with a 200 KB header, 20 with hostile request lines and 60
ordinary GETs of the pages. While they are all open: one more GET / and a
read of FILE must answer within 5 s. Afterwards GET / must still answer.
Prints one summary line; exit status 0 when all of that held. Every
socket has a timeout and the whole run is bounded.
"""
import os
import socket
import sys
import threading
import time

PORT = int(sys.argv[1])
FILE = sys.argv[2]
HOST = "127.0.0.1"


def connect():
    s = socket.create_connection((HOST, PORT), timeout=30)
    s.settimeout(30)
    return s


def get(path):
    """One GET; returns (status, body bytes)."""
    s = connect()
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head = data.split(b"\r\n", 1)[0].split()
    return (int(head[1]) if len(head) > 1 else 0), data


held = []
results = {"valid_ok": 0, "valid_bad": 0, "hostile_answers": 0}
lock = threading.Lock()


def valid(path):
    try:
        st, _ = get(path)
        ok = st == 200
    except OSError:
        ok = False
    with lock:
        results["valid_ok" if ok else "valid_bad"] += 1


def hostile(raw):
    try:
        s = connect()
        s.sendall(raw)
        try:
            if s.recv(4096):
                with lock:
                    results["hostile_answers"] += 1
        except OSError:
            pass
        s.close()
    except OSError:
        pass


def main():
    t0 = time.monotonic()
    # Slow clients: half a request, then nothing (kept open).
    for _ in range(60):
        s = connect()
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        held.append(s)
    # Garbage, and a never-ending header line, sent on held sockets.
    for i in range(40):
        s = connect()
        s.sendall(os.urandom(512) + b"\0\r\n\r\n" if i % 2 else b"\x16\x03\x01\x02\x00\x01")
        held.append(s)
    threads = []
    for i in range(20):
        raw = b"GET /" + b"a" * 200000 + b" HTTP/1.1\r\n\r\n" if i % 2 else \
            b"GET / HTTP/1.1\r\nX: " + b"b" * 200000 + b"\r\n\r\n"
        threads.append(threading.Thread(target=hostile, args=(raw,)))
    lines = [b"BREW /../../etc/passwd HTTP/1.1\r\n\r\n",
             b"GET /file/../../../etc/passwd HTTP/1.1\r\n\r\n",
             b"GET /file/runs/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\n\r\n",
             b"GET /file/pipelines/x/step.json HTTP/1.1\r\n\r\n",
             b"GET /run/99999999999999999999999 HTTP/1.1\r\n\r\n",
             b"GET /run/-1 HTTP/1.1\r\n\r\n",
             b"GET /%00 HTTP/1.1\r\n\r\n",
             b"POST / HTTP/1.1\r\nContent-Length: 100000000\r\n\r\nxxxx",
             b"GET / HTTP/9.9\r\n\r\n",
             b"\r\n\r\n\r\n"]
    for i in range(20):
        threads.append(threading.Thread(target=hostile, args=(lines[i % len(lines)],)))
    pages = ["/", "/pipeline/" + sys.argv[3] if len(sys.argv) > 3 else "/",
             "/run/1", "/file/runs/1/status", "/file/runs/1/dag.svg"]
    for i in range(60):
        threads.append(threading.Thread(target=valid, args=(pages[i % len(pages)],)))
    for t in threads:
        t.start()
    # While everything is open: a fresh request and the mount answer.
    t1 = time.monotonic()
    st, _ = get("/")
    fresh_ms = (time.monotonic() - t1) * 1000
    t1 = time.monotonic()
    box = {}
    reader = threading.Thread(target=lambda: box.update(data=open(FILE, "rb").read()))
    reader.daemon = True
    reader.start()
    reader.join(5)
    mount_ms = (time.monotonic() - t1) * 1000
    mount_ok = "data" in box
    for t in threads:
        t.join(60)
    open_at_once = len(held) + len(threads)
    for s in held:
        s.close()
    after, _ = get("/")
    ok = st == 200 and fresh_ms < 5000 and mount_ok and after == 200 and \
        results["valid_bad"] == 0 and results["valid_ok"] == 60
    print("connections=%d valid_ok=%d valid_bad=%d hostile_answered=%d "
          "fresh_get_ms=%.0f mount_read_ms=%.0f after=%d total_s=%.1f %s" %
          (open_at_once, results["valid_ok"], results["valid_bad"],
           results["hostile_answers"], fresh_ms, mount_ms, after,
           time.monotonic() - t0, "ok" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
