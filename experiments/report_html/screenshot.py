"""Look at a diagnosis's report.html the way a person would: headless Chromium (Debian's ``chromium``) renders
its first screen and the page with the most frequent confusion's cell opened, and checks that every figure is
drawn and every clip decodes (the page's ``?selftest``).

    python experiments/report_html/screenshot.py <run>/diagnosis/report.html [out_dir]

Prints the two PNG paths and the self-test's result; exits 1 when a figure or clip is broken.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=20000"]


def browser() -> str:
    found = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if found is None:
        sys.exit("no Chromium found: apt-get install chromium (Debian), or put chromium on PATH")
    return found


def biggest_confusion(page: str) -> str | None:
    """The id of the off-diagonal cell with the most utterances (``c<i>_<j>``), None without one."""
    cells = [(int(n), f"c{i}_{j}") for i, j, n in re.findall(r'data-cell="c(\d+)_(\d+)"[^>]*>(\d+)<', page) if i != j]
    return max(cells)[1] if cells else None


def selftest(chrome: str, url: str, tries: int = 2) -> dict:
    """The page's ``?selftest`` result; asked again once when the page had not written it when headless Chromium's
    virtual time ran out (the decoder works off the page's clock, and a loaded machine can outlast the budget)."""
    for _ in range(tries):
        out = subprocess.run([chrome, *FLAGS, "--dump-dom", "--enable-logging=stderr", f"{url}?selftest"],
                             capture_output=True, text=True, timeout=120)
        found = re.search(r'<pre id="selftest">([^<]*)</pre>', out.stdout)
        if found:
            break
    result = json.loads(found.group(1)) if found else {"error": "the self-test did not finish"}
    result["console_errors"] = [line for line in out.stderr.splitlines() if "CONSOLE" in line and "Uncaught" in line]
    return result


def shoot(chrome: str, url: str, path: Path, size: str = "1280,1000") -> Path:
    subprocess.run([chrome, *FLAGS, f"--window-size={size}", f"--screenshot={path}", url], capture_output=True,
                   timeout=120, check=True)
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
