"""A minimal Chrome DevTools Protocol client over python3-websocket, and a
headless Chromium started privately (its own profile directory, no proxy
bypass for anything but loopback) and stopped by its pid."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

import websocket

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class Browser:
    def __init__(self, width=1280, height=900):
        self.profile = tempfile.mkdtemp(prefix="spamsink-chromium-")
        self.log = open(os.path.join(self.profile, "chromium.log"), "w")
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--remote-debugging-address=127.0.0.1",
             "--remote-debugging-port=0", "--remote-allow-origins=*",
             "--user-data-dir=" + self.profile, "--no-first-run",
             "--no-default-browser-check", "--disable-background-networking",
             "--disable-component-update", "--disable-sync",
             "--disable-extensions", "--disable-default-apps",
             "--disable-features=Translate,MediaRouter,OptimizationHints",
             # Anything not on loopback goes to a dead proxy and fails.
             "--proxy-server=http://127.0.0.1:9",
             "--window-size=%d,%d" % (width, height), "about:blank"],
            stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.monotonic() + 30
        port = None
        while time.monotonic() < deadline and port is None:
            if self.proc.poll() is not None:
                raise RuntimeError("chromium exited: " + self._log())
            try:
                with open(port_file) as f:
                    port = int(f.readline())
            except (OSError, ValueError):
                time.sleep(0.05)
        if port is None:
            self.close()
            raise RuntimeError("chromium did not start: " + self._log())
        with urllib.request.urlopen(
                "http://127.0.0.1:%d/json/list" % port, timeout=10) as r:
            targets = json.loads(r.read())
        page = [t for t in targets if t.get("type") == "page"][0]
        self.ws = websocket.create_connection(
            page["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
        self.next_id = 0
        self.events = []

    def _log(self):
        self.log.flush()
        with open(self.log.name, errors="replace") as f:
            return f.read()[-2000:]

    def _recv(self):
        msg = json.loads(self.ws.recv())
        if "id" not in msg:
            self.events.append(msg)
        return msg

    def call(self, method, **params):
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method,
                                 "params": params}))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = self._recv()
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
        raise TimeoutError(method)

    def wait_event(self, name, since, timeout=20):
        """The first event called name at index >= since of self.events."""
        deadline = time.monotonic() + timeout
        while True:
            for e in self.events[since:]:
                if e.get("method") == name:
                    return e
            if time.monotonic() > deadline:
                raise TimeoutError(name)
            self._recv()

    def navigate(self, url):
        mark = len(self.events)
        self.call("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired", mark)

    def submit_and_wait(self, script):
        """Runs script (which submits a form or follows a link) and waits
        for the next page to load."""
        mark = len(self.events)
        self.eval(script)
        self.wait_event("Page.loadEventFired", mark)

    def eval(self, expression):
        r = self.call("Runtime.evaluate", expression=expression,
                      returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError("%s: %s" % (expression, r["exceptionDetails"]))
        return r["result"].get("value")

    def wait_for(self, expression, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.eval(expression)
            if value:
                return value
            time.sleep(0.1)
        raise TimeoutError(expression)

    def screenshot(self, path):
        import base64
        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        try:
            if getattr(self, "ws", None):
                self.ws.close()
        finally:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=5)
            self.log.close()
            shutil.rmtree(self.profile, ignore_errors=True)
