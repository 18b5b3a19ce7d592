"""Look at a diagnosis's report.html the way a person would: headless Chromium (Debian's ``chromium``) renders
its first screen and the page with the most frequent confusion's cell opened, and checks that every figure is
drawn and every clip decodes (the page's ``?selftest``).

    python experiments/report_html/screenshot.py <run>/diagnosis/report.html [out_dir]

Prints the two PNG paths and the self-test's result; exits 1 when a figure or clip is broken.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]


def browser() -> str:
    found = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if found is None:
        sys.exit("no Chromium found: apt-get install chromium (Debian), or put chromium on PATH")
    return found


def biggest_confusion(page: str) -> str | None:
    """The id of the off-diagonal cell with the most utterances (``c<i>_<j>``), None without one."""
    cells = [(int(n), f"c{i}_{j}") for i, j, n in re.findall(r'data-cell="c(\d+)_(\d+)"[^>]*>(\d+)<', page) if i != j]
    return max(cells)[1] if cells else None


def selftest(chrome: str, url: str, timeout_s: float = 120) -> dict:
    """The page's ``?selftest`` result, waited for in real time: headless Chromium driven over the DevTools
    protocol on a pipe, the page asked every 0.2 s whether it has written ``#selftest``. (``--dump-dom`` under a
    virtual-time budget dumps when the page's clock runs out, and the audio decoder, which answers off that clock,
    may not have answered yet on a loaded machine: one run in five here with three busy processes.)"""
    with tempfile.TemporaryDirectory() as profile, DevTools(chrome, profile) as tools:
        target = tools.call("Target.createTarget", url="about:blank")["targetId"]
        session = tools.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        tools.call("Runtime.enable", session=session)
        tools.call("Page.navigate", session=session, url=f"{url}?selftest")
        deadline, text = time.monotonic() + timeout_s, ""
        while not text and time.monotonic() < deadline:
            time.sleep(0.2)
            text = tools.call("Runtime.evaluate", session=session, returnByValue=True,
                              expression="(document.getElementById('selftest') || {}).textContent || ''")
            text = text["result"].get("value", "")
        result = json.loads(text) if text else {"error": f"the self-test did not finish in {timeout_s:.0f} s"}
        result["console_errors"] = tools.uncaught
    return result


class DevTools:
    """Chromium's DevTools protocol over ``--remote-debugging-pipe`` (its fd 3 reads commands, fd 4 writes answers,
    each JSON ending in NUL): the standard library only, no websocket client."""

    def __init__(self, chrome: str, profile: str):
        to_chrome, self._write = os.pipe()
        self._read, from_chrome = os.pipe()
        # above 4, so that placing them at 3 and 4 in the child overwrites neither
        ends = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_chrome, from_chrome)]
        os.close(to_chrome), os.close(from_chrome)

        def place():
            os.dup2(ends[0], 3), os.dup2(ends[1], 4)

        self.process = subprocess.Popen([chrome, *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={profile}",
                                         "--no-first-run", "--disable-background-networking", "--disable-sync",
                                         "--disable-component-update"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=place,
                                        pass_fds=(3, 4))
        for fd in ends:
            os.close(fd)
        self._buffer, self._next, self.uncaught = b"", 0, []

    def call(self, method: str, session: str | None = None, timeout_s: float = 60, **params) -> dict:
        self._next += 1
        message = {"id": self._next, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout_s
        while True:
            answer = self._message(deadline, method)
            if answer.get("method") == "Runtime.exceptionThrown":
                details = answer["params"]["exceptionDetails"]
                self.uncaught.append(details.get("exception", {}).get("description") or details.get("text", ""))
            elif answer.get("id") == self._next:
                if "error" in answer:
                    raise RuntimeError(f"Chromium answered {method} with {answer['error']}")
                return answer["result"]

    def _message(self, deadline: float, method: str) -> dict:
        """The next message Chromium wrote (an answer or an event)."""
        while b"\0" not in self._buffer:
            if not select.select([self._read], [], [], max(0.0, deadline - time.monotonic()))[0]:
                raise TimeoutError(f"Chromium did not answer {method}")
            chunk = os.read(self._read, 1 << 16)
            if not chunk:
                raise RuntimeError(f"Chromium closed its DevTools pipe during {method}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def __enter__(self):
        return self

    def __exit__(self, *_):
        for fd in (self._write, self._read):
            os.close(fd)
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def shoot(chrome: str, url: str, path: Path, size: str = "1280,1000") -> Path:
    subprocess.run([chrome, *FLAGS, "--virtual-time-budget=20000", f"--window-size={size}", f"--screenshot={path}",
                    url], capture_output=True, timeout=120, check=True)
    return path


def main(argv: list[str]) -> int:
    if not argv:
        sys.exit(__doc__)
    report = Path(argv[0]).resolve()
    out = Path(argv[1]) if len(argv) > 1 else report.parent
    out.mkdir(parents=True, exist_ok=True)
    chrome, url = browser(), report.as_uri()
    first = shoot(chrome, url, out / "report_first_screen.png")
    cell = biggest_confusion(report.read_text())
    opened = shoot(chrome, f"{url}?cell={cell}", out / "report_confusion_cell.png") if cell else None
    result = selftest(chrome, url)
    print(f"first screen: {first}\nconfusion cell {cell}: {opened}\nself-test: {json.dumps(result)}")
    broken = result.get("error") or result.get("broken_images") or result.get("broken_clips") \
        or result.get("console_errors")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
