#!/usr/bin/env python3
"""cdp.py - drive headless Chromium for the browser tests (stdlib only).

Chromium is started with --remote-debugging-pipe: DevTools protocol
messages are JSON texts ending in NUL on file descriptors 3 (to the
browser) and 4 (from it). The browser runs in its own process group and
is stopped by its pid (group) when this script ends, however it ends.

    cdp.py [--touch FILE] [--until JS] [--timeout S] [--screenshot PNG]
           [--width W] [--height H] URL

Opens URL, waits for the load, then (when given) creates FILE, so that
something changes while the page is open, then evaluates the JS
expression --until every 100 ms until it is true (bounded by --timeout),
takes the screenshot, and prints the DOM (document.documentElement
.outerHTML) on stdout. Exit status 0, 1 when --until never held, 2 on a
browser or protocol failure.
"""
import argparse
import base64
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time


class Browser:
    def __init__(self, width, height):
        self.profile = tempfile.mkdtemp(prefix="flowy-chromium-")
        to_r, self.to_w = os.pipe()
        self.from_r, from_w = os.pipe()
        # Out of the way of 3 and 4 first, so the redirections cannot clash.
        for name in ("to_r", "from_w"):
            fd = locals()[name]
            high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
            os.close(fd)
            if name == "to_r":
                to_r = high
            else:
                from_w = high
        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        if not exe:
            raise RuntimeError("chromium is not installed")

        # The shell puts the pipe ends on 3 and 4 and becomes chromium (exec),
        # so the pid is the browser's.
        wrap = 'exec "$0" "$@" 3<&%d 4>&%d %d<&- %d>&-' % (to_r, from_w, to_r, from_w)
        self.proc = subprocess.Popen(
            ["bash", "-c", wrap, exe, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run",
             "--user-data-dir=" + self.profile, "--remote-debugging-pipe",
             "--window-size=%d,%d" % (width, height), "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, pass_fds=(to_r, from_w),
            start_new_session=True)
        os.close(to_r)
        os.close(from_w)
        self.buf = b""
        self.next_id = 0
        self.events = []

    def send(self, method, params=None, session=None, timeout=30):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self.read(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError("%s: %s" % (method, reply["error"]))
                return reply.get("result", {})
            self.events.append(reply)

    def read(self, deadline):
        import select
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("chromium did not answer in time")
            r, _, _ = select.select([self.from_r], [], [], left)
            if r:
                chunk = os.read(self.from_r, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the pipe")
                self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        for fd in (self.to_w, self.from_r):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)


def evaluate(b, session, expr):
    r = b.send("Runtime.evaluate", {"expression": expr, "returnByValue": True},
               session)
    return r.get("result", {}).get("value")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--touch")
    ap.add_argument("--until")
    ap.add_argument("--timeout", type=float, default=20)
    ap.add_argument("--screenshot")
    ap.add_argument("--width", type=int, default=1200)
    ap.add_argument("--height", type=int, default=900)
    a = ap.parse_args()
    b = Browser(a.width, a.height)
    status = 0
    try:
        target = b.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = b.send("Target.attachToTarget",
                         {"targetId": target, "flatten": True})["sessionId"]
        b.send("Page.enable", {}, session)
        b.send("Page.navigate", {"url": a.url}, session)
        deadline = time.monotonic() + a.timeout
        while evaluate(b, session, "document.readyState") != "complete":
            if time.monotonic() > deadline:
                raise RuntimeError("the page did not load in time")
            time.sleep(0.05)
        if a.touch:
            open(a.touch, "w").close()
        if a.until:
            while not evaluate(b, session, a.until):
                if time.monotonic() > deadline:
                    print("cdp.py: condition never held: %s" % a.until,
                          file=sys.stderr)
                    status = 1
                    break
                time.sleep(0.1)
        if a.screenshot:
            shot = b.send("Page.captureScreenshot", {"format": "png"}, session)
            with open(a.screenshot, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
        sys.stdout.write(evaluate(b, session, "document.documentElement.outerHTML")
                         or "")
        sys.stdout.write("\n")
    except (RuntimeError, OSError, ValueError, KeyError) as e:
        print("cdp.py: %s" % e, file=sys.stderr)
        status = 2
    finally:
        b.stop()
    return status


if __name__ == "__main__":
    sys.exit(main())
