"""Shared helper of the bench scripts: replace one section of bench/RESULTS.md."""

from __future__ import annotations

import platform
import re
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_line() -> str:
    import os

    return f"{platform.machine()} ({cpu_model()}), {os.cpu_count()} logical cores, Python {platform.python_version()}"


def write_section(name: str, markdown: str) -> None:
    """Put ``markdown`` between ``<!-- name:begin -->`` and ``<!-- name:end -->``."""
    text = RESULTS.read_text() if RESULTS.exists() else ""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{markdown.rstrip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text)
