"""``python -m ser.diagnose run=<run dir> [device=cpu] [out=<dir>] [snrs=[40,20,10,5,0]] [data.root=...]``.

Writes ``<run>/diagnosis/report.md`` (ranked causes first), ``diagnosis.json``, PNG figures and
a TensorBoard log of the figures. Other ``key=value`` arguments patch the run's stored config.
"""

from __future__ import annotations

import logging
import sys

from ser.diagnose.core import diagnose

USAGE = "usage: python -m ser.diagnose run=<run dir> [device=cpu] [out=<dir>] [snrs=[40,20,10,5,0]] [data.root=<dir> ...]"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args, overrides = {}, []
    for item in argv:
        key, sep, value = item.partition("=")
        if not sep:
            sys.exit(f"ser.diagnose: {item!r} is not key=value\n{USAGE}")
        if key in ("run", "device", "out", "snrs"):
            args[key] = value
        else:
            overrides.append(item)
    if "run" not in args:
        sys.exit(USAGE)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    snrs = tuple(float(s) for s in args.get("snrs", "[40,20,10,5,0]").strip("[]").split(",") if s.strip())
    report = diagnose(args["run"], overrides, device=args.get("device", "cpu"), snrs=snrs, out=args.get("out"))
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
