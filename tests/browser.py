"""A small Chrome DevTools Protocol driver for the page tests: headless Chromium over a websocket.

One :class:`Browser` is one Chromium process with one page (tab). Input goes in as real events
(``Input.dispatchMouseEvent`` / ``Input.dispatchKeyEvent`` / ``Input.insertText``), as a person's
mouse and keyboard would, so the page's own listeners run; the page is read back with
``Runtime.evaluate``::

    with Browser(chromium) as b:
        b.open(f"file://{page}#stride=2")
        b.type("#stride", "3")          # click, select all, insert "3", Enter
        b.click('[data-pixel="0,1"]')   # mouseMoved, mousePressed, mouseReleased at its centre
        state = b.state()               # the JSON in #state-json

Also ``back()``/``forward()`` (the history buttons), ``key()``, ``select()``, ``set_viewport()``,
``screenshot()``, and ``frames()``/``frame_eval()``/``frame_state()`` for pages inside iframes.
Uses ``websocket-client`` (the ``test`` extra).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import websocket


class BrowserError(RuntimeError):
    """The browser or the page did something the driver did not expect."""


# name -> (key, code, windowsVirtualKeyCode, text): what dispatchKeyEvent needs for a key press
KEYS = {
    "Enter": ("Enter", "Enter", 13, "\r"),
    "Tab": ("Tab", "Tab", 9, ""),
    "Escape": ("Escape", "Escape", 27, ""),
    "Backspace": ("Backspace", "Backspace", 8, ""),
    "Delete": ("Delete", "Delete", 46, ""),
    "Space": (" ", "Space", 32, " "),
    " ": (" ", "Space", 32, " "),
    "ArrowLeft": ("ArrowLeft", "ArrowLeft", 37, ""),
    "ArrowUp": ("ArrowUp", "ArrowUp", 38, ""),
    "ArrowRight": ("ArrowRight", "ArrowRight", 39, ""),
    "ArrowDown": ("ArrowDown", "ArrowDown", 40, ""),
    "Home": ("Home", "Home", 36, ""),
    "End": ("End", "End", 35, ""),
    "PageUp": ("PageUp", "PageUp", 33, ""),
    "PageDown": ("PageDown", "PageDown", 34, ""),
}
MODIFIERS = {"Alt": 1, "Control": 2, "Meta": 4, "Shift": 8}


class Browser:
    """Headless Chromium driven over the DevTools protocol; a context manager (``close`` on exit)."""

    def __init__(self, chromium: str, width: int = 1200, height: int = 900, timeout: float = 30.0):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="tconv-chromium-")
        self.events: list[dict] = []
        self.errors: list[str] = []  # uncaught exceptions and console.error of the page
        self._id = 0
        self._log = open(os.path.join(self.profile, "stderr.log"), "w+b")
        self.proc = subprocess.Popen(
            [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
             "--remote-allow-origins=*", f"--user-data-dir={self.profile}", f"--window-size={width},{height}",
             "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--disable-quic", "--hide-scrollbars",
             "--mute-audio", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._log)
        try:
            port = self._port()
            self.ws = websocket.create_connection(self._page_target(port), timeout=timeout,
                                                  suppress_origin=True, enable_multithread=False)
            for domain in ("Page", "Runtime"):
                self.send(f"{domain}.enable")
            self.set_viewport(width, height)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ the process and the socket

    def _port(self) -> int:
        """The DevTools port: the ``DevToolsActivePort`` file, or stderr's "DevTools listening" line."""
        active = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if active.exists():
                lines = active.read_text().split()
                if lines and lines[0].isdigit():
                    return int(lines[0])
            self._log.seek(0)
            for line in self._log.read().decode(errors="replace").splitlines():
                if "DevTools listening on ws://" in line:
                    return int(line.split("ws://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
            if self.proc.poll() is not None:
                raise BrowserError(f"Chromium exited ({self.proc.returncode}): {self._stderr()}")
            time.sleep(0.05)
        raise BrowserError(f"Chromium gave no DevTools port in {self.timeout} s: {self._stderr()}")

    def _stderr(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-2000:]

    def _page_target(self, port: int) -> str:
        deadline = time.monotonic() + self.timeout
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=self.timeout) as r:
                pages = [t for t in json.load(r) if t.get("type") == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
            if time.monotonic() > deadline:
                raise BrowserError("Chromium has no page target")
            time.sleep(0.05)

    def _receive(self, timeout: float) -> dict | None:
        self.ws.settimeout(max(timeout, 0.001))
        try:
            message = json.loads(self.ws.recv())
        except websocket.WebSocketTimeoutException:
            return None
        if "method" in message:
            self.events.append(message)
            method, params = message["method"], message.get("params", {})
            if method == "Runtime.exceptionThrown":
                d = params["exceptionDetails"]
                self.errors.append(d.get("exception", {}).get("description") or d.get("text", ""))
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                self.errors.append(" ".join(str(a.get("value", a.get("description", "")))
                                            for a in params.get("args", [])))
        return message

    def send(self, method: str, _session: str | None = None, **params: Any) -> dict:
        """One protocol command (to the page, or to the target of an attached ``_session``); its
        result (raises BrowserError on a protocol error)."""
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if _session is not None:
            message["sessionId"] = _session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            message = self._receive(deadline - time.monotonic())
            if message is not None and message.get("id") == self._id:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return message.get("result", {})
        raise BrowserError(f"{method}: no answer in {self.timeout} s")

    def wait_event(self, *methods: str, timeout: float | None = None) -> dict:
        """The first event of one of ``methods`` since the events were last cleared (then cleared)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            for i, e in enumerate(self.events):
                if e["method"] in methods:
                    del self.events[:i + 1]
                    return e
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"no {' or '.join(methods)} event in time")
            self._receive(left)

    def close(self) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            try:
                ws.close()
            except Exception:
                pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ the page

    def open(self, url: str) -> None:
        """Navigate to ``url`` and wait for its load event. A new document each time, even when only
        the fragment differs from the current URL (then the page is reloaded at the new URL)."""
        self.events.clear()
        result = self.send("Page.navigate", url=url)
        if result.get("errorText"):
            raise BrowserError(f"Page.navigate {url}: {result['errorText']}")
        if "loaderId" not in result:  # a same-document (fragment) navigation: load it afresh
            self.wait_event("Page.navigatedWithinDocument")
            self.events.clear()
            self.send("Page.reload", ignoreCache=True)
        self.wait_event("Page.loadEventFired")
        self.settle()

    def settle(self) -> None:
        """Wait for two animation frames and a task: what the page does after an event is done."""
        self.eval("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => "
                  "setTimeout(r, 0))))")

    def eval(self, expression: str) -> Any:
        """``expression``'s value (JSON-able; a promise is awaited); a thrown exception raises."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True, userGesture=True)
        if "exceptionDetails" in result:
            d = result["exceptionDetails"]
            raise BrowserError(f"{expression[:200]}: "
                               f"{d.get('exception', {}).get('description') or d.get('text')}")
        return result["result"].get("value")

    def frames(self) -> list[str]:
        """The frame ids of the page's iframes, in document order."""
        ids = []
        for i in range(self.eval("document.querySelectorAll('iframe').length")):
            element = self.send("Runtime.evaluate",
                                expression=f"document.querySelectorAll('iframe')[{i}]")["result"]
            ids.append(self.send("DOM.describeNode", objectId=element["objectId"])["node"]["frameId"])
        return ids

    def frame_eval(self, frame: str, expression: str) -> Any:
        """``expression``'s value inside iframe ``frame``: in its own process when Chromium isolates
        it (a sandboxed frame: attached as a target of its own), else in an isolated world of it (its
        DOM, not its scripts' variables)."""
        targets = self.send("Target.getTargets")["targetInfos"]
        if any(t["targetId"] == frame and t["type"] == "iframe" for t in targets):
            session = self.send("Target.attachToTarget", targetId=frame, flatten=True)["sessionId"]
            result = self.send("Runtime.evaluate", _session=session, expression=expression,
                               returnByValue=True, awaitPromise=True)
        else:
            context = self.send("Page.createIsolatedWorld", frameId=frame, worldName="tconv-tests")
            result = self.send("Runtime.evaluate", expression=expression, returnByValue=True,
                               awaitPromise=True, contextId=context["executionContextId"])
        if "exceptionDetails" in result:
            d = result["exceptionDetails"]
            raise BrowserError(f"{expression[:200]}: "
                               f"{d.get('exception', {}).get('description') or d.get('text')}")
        return result["result"].get("value")

    def frame_state(self, frame: str) -> dict:
        """A child frame's page state (its ``#state-json``)."""
        self.settle()
        text = self.frame_eval(frame, "(document.getElementById('state-json') || {}).textContent")
        if not text:
            raise BrowserError(f"frame {frame} wrote no #state-json")
        return json.loads(text)

    def state(self) -> dict:
        """The page's state: the JSON in ``<pre id="state-json">``, once the page has settled."""
        self.settle()
        text = self.eval("(document.getElementById('state-json') || {}).textContent")
        if not text:
            raise BrowserError("the page wrote no #state-json")
        return json.loads(text)

    def url(self) -> str:
        return self.eval("location.href")

    def exists(self, selector: str) -> bool:
        return self.eval(f"!!document.querySelector({json.dumps(selector)})")

    def centre(self, selector: str) -> tuple[float, float]:
        """Scroll ``selector``'s element into view; the viewport coordinates of its centre, where it
        must be the element a click hits (or a descendant of it): a covered element is an error."""
        x, y, hit = self.eval(f"""(() => {{
            const el = document.querySelector({json.dumps(selector)});
            if (!el) throw new Error('no element ' + {json.dumps(selector)});
            el.scrollIntoView({{block: 'center', inline: 'center'}});
            const r = el.getBoundingClientRect();
            if (r.width === 0 || r.height === 0) throw new Error({json.dumps(selector)} + ' is not shown');
            const x = r.left + r.width / 2, y = r.top + r.height / 2;
            const at = document.elementFromPoint(x, y);
            return [x, y, !!at && (at === el || el.contains(at))];
        }})()""")
        if not hit:
            what = self.eval(f"""(() => {{ const el = document.querySelector({json.dumps(selector)});
                const r = el.getBoundingClientRect();
                const at = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
                return at ? at.outerHTML.slice(0, 200) : 'nothing'; }})()""")
            raise BrowserError(f"{selector} is covered at its centre by {what}")
        return x, y

    def _mouse(self, kind: str, x: float, y: float, **extra: Any) -> None:
        self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, **extra)

    def hover(self, selector: str) -> None:
        """Move the mouse to the centre of ``selector``'s element (a real mouseMoved event)."""
        x, y = self.centre(selector)
        self._mouse("mouseMoved", x, y)
        self.settle()

    def click(self, selector: str) -> None:
        """A real left click at the centre of ``selector``'s element (moved, pressed, released)."""
        x, y = self.centre(selector)
        self._mouse("mouseMoved", x, y)
        self._mouse("mousePressed", x, y, button="left", buttons=1, clickCount=1)
        self._mouse("mouseReleased", x, y, button="left", buttons=0, clickCount=1)
        self.settle()

    def key(self, name: str, modifiers: tuple[str, ...] = (), commands: tuple[str, ...] = (),
            settle: bool = True) -> None:
        """Press and release a key: a name of :data:`KEYS` or one printable character (then wait for
        the page to settle, unless ``settle`` is false)."""
        if name in KEYS:
            key, code, vk, text = KEYS[name]
        elif len(name) == 1:
            key, text = name, name
            code = f"Key{name.upper()}" if name.isalpha() else (f"Digit{name}" if name.isdigit() else "")
            vk = ord(name.upper()) if name.isalnum() else 0
        else:
            raise ValueError(f"unknown key {name!r}")
        mods = sum(MODIFIERS[m] for m in modifiers)
        if mods & ~MODIFIERS["Shift"]:
            text = ""  # a shortcut types nothing
        down = dict(key=key, code=code, windowsVirtualKeyCode=vk, nativeVirtualKeyCode=vk, modifiers=mods)
        if commands:
            down["commands"] = list(commands)
        if text:
            self.send("Input.dispatchKeyEvent", type="keyDown", text=text, unmodifiedText=text, **down)
        else:
            self.send("Input.dispatchKeyEvent", type="rawKeyDown", **down)
        self.send("Input.dispatchKeyEvent", type="keyUp", key=key, code=code, windowsVirtualKeyCode=vk,
                  nativeVirtualKeyCode=vk, modifiers=mods)
        if settle:
            self.settle()

    def type(self, selector: str, text: str, then: str | None = "Enter") -> None:
        """Replace what ``selector``'s field holds by ``text`` as a person does: click into it, select
        all (Ctrl+A), type the text (``Input.insertText``), then press ``then`` (Enter, Tab or None)."""
        self.click(selector)
        self.key("a", modifiers=("Control",), commands=("selectAll",))
        if text:
            self.send("Input.insertText", text=text)
        else:
            self.key("Delete")
        if then:
            self.key(then)
        self.settle()

    def select(self, selector: str, value: str) -> None:
        """Choose ``value`` in a ``<select>`` as a person does: a real click opens its drop-down, Home,
        ArrowDown to the option (disabled ones are passed over), Enter: one change event."""
        q = json.dumps(selector)
        options = self.eval(f"[...document.querySelector({q}).options].filter(o => !o.disabled)"
                            f".map(o => o.value)")
        if value not in options:
            raise BrowserError(f"{selector} has no option {value!r} (options: {options})")
        self.click(selector)
        self.key("Home", settle=False)  # in the open drop-down: nothing changes before Enter
        for _ in range(options.index(value)):
            self.key("ArrowDown", settle=False)
        self.key("Enter")
        now = self.eval(f"document.querySelector({q}).value")
        if now != value:
            raise BrowserError(f"{selector}: the keyboard chose {now!r}, not {value!r}")

    def set_viewport(self, width: int, height: int) -> None:
        """The page's viewport in CSS pixels (``Emulation.setDeviceMetricsOverride``)."""
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False)
        self.settle()

    def screenshot(self, path: str | os.PathLike) -> bytes:
        """A PNG of the viewport, written to ``path``; its bytes."""
        data = base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"])
        Path(path).write_bytes(data)
        return data

    def back(self) -> None:
        """The browser's back button: the previous history entry (a fragment or another document)."""
        self._history(-1)

    def forward(self) -> None:
        """The browser's forward button."""
        self._history(+1)

    def _history(self, step: int) -> None:
        history = self.send("Page.getNavigationHistory")
        to = history["currentIndex"] + step
        if not 0 <= to < len(history["entries"]):
            raise BrowserError(f"no history entry {step:+d} from the current one")
        self.events.clear()
        self.send("Page.navigateToHistoryEntry", entryId=history["entries"][to]["id"])
        self.wait_event("Page.navigatedWithinDocument", "Page.loadEventFired")
        self.settle()
