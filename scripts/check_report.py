"""Open the demo report in headless Chromium and check that every chart rendered.

Usage: python scripts/check_report.py REPORT_DIR

For the whole page: every chart the demo draws (EXPECTED, by title) is present, no console
errors, and the DOM Chromium built holds one <svg> per chart section. For each chart: a page
holding only that chart is screenshotted and must not be blank (enough non-white pixels and
several colours). Exits non-zero with the reason on failure.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

from PIL import Image

# The charts of the report, by the start of their <title>: each must be present and non-blank.
EXPECTED = [
    "Active rate by month",
    "Active users decomposed by month",
    "Lifecycle stages by month",
    "Stage transitions into ",
    "Cohort retention",
    "Funnel",
    "RFM segment sizes",
    "Churn risk distribution",
    "Churn risk bands by model",
    "Channel effectiveness",
    "Attributed revenue by channel",
    "Top category preference",
    "Members per tier",
    "Automation plan by channel",
    "Events per month by kind",
]

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("check_report: chromium not found")


def run(args: list[str], profile: str, tries: int = 2) -> subprocess.CompletedProcess[str]:
    """Run Chromium with its output in files (not pipes: its helper processes would hold a
    pipe open after a timeout) in a session of its own, killed whole if it hangs."""
    import os
    import signal

    for attempt in range(tries):
        out_path, err_path = f"{profile}.out", f"{profile}.err"
        with open(out_path, "w") as out, open(err_path, "w") as err:
            proc = subprocess.Popen(
                [chromium(), *FLAGS, f"--user-data-dir={profile}-{attempt}", "--enable-logging=stderr", "--v=0", *args],
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
            try:
                code = proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                print(f"check_report: chromium timed out (attempt {attempt + 1})", file=sys.stderr)
                continue
        with open(out_path) as o, open(err_path) as e:
            return subprocess.CompletedProcess(proc.args, code, o.read(), e.read())
    sys.exit("check_report: chromium did not finish in time")


def console_errors(stderr: str) -> list[str]:
    return [l for l in stderr.splitlines() if "CONSOLE" in l and ("ERROR" in l or "Uncaught" in l)]


def main() -> int:
    report = pathlib.Path(sys.argv[1]).resolve() / "index.html"
    html = report.read_text(encoding="utf-8")
    sections = html.count('<figure class="chart">')
    svgs = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    if sections == 0 or len(svgs) != sections:
        print(f"check_report: {sections} chart sections but {len(svgs)} charts")
        return 1
    titles = [m.group(1) if m else "" for m in (re.search(r"<title>(.*?)</title>", s) for s in svgs)]
    missing = [e for e in EXPECTED if not any(t.startswith(e) for t in titles)]
    if missing:
        print("check_report: charts missing from the report:", *missing, sep="\n  ")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        dom = run(["--dump-dom", report.as_uri()], f"{tmp}/profile-dom")
        if dom.returncode != 0:
            print("check_report: chromium failed:", dom.stderr[-2000:])
            return 1
        errors = console_errors(dom.stderr)
        if errors:
            print("check_report: console errors:", *errors, sep="\n  ")
            return 1
        rendered = dom.stdout.count("<svg")
        if rendered != len(svgs):
            print(f"check_report: chromium's DOM has {rendered} <svg>, the page {len(svgs)}")
            return 1
        for i, svg in enumerate(svgs):
            title = re.search(r"<title>(.*?)</title>", svg)
            name = title.group(1) if title else f"chart {i}"
            page = pathlib.Path(tmp) / f"chart{i}.html"
            page.write_text(f"<!doctype html><html><body style='margin:0;background:#fff'>{svg}</body></html>", encoding="utf-8")
            png = pathlib.Path(tmp) / f"chart{i}.png"
            shot = run([f"--screenshot={png}", "--window-size=800,700", page.as_uri()], f"{tmp}/profile-{i}")
            if shot.returncode != 0 or not png.exists():
                print(f"check_report: no screenshot of {name!r}:", shot.stderr[-2000:])
                return 1
            errors = console_errors(shot.stderr)
            if errors:
                print(f"check_report: console errors on {name!r}:", *errors, sep="\n  ")
                return 1
            img = Image.open(png).convert("RGB")
            raw = img.tobytes()
            pixels = [raw[j : j + 3] for j in range(0, len(raw), 3)]
            ink = sum(1 for p in pixels if p != b"\xff\xff\xff") / len(pixels)
            colours = len(set(pixels))
            if ink < 0.005 or colours < 4:
                print(f"check_report: chart {name!r} looks blank (ink {ink:.4f}, {colours} colours)")
                return 1
            print(f"  rendered {name!r}: {ink:.1%} ink, {colours} colours")
    print(f"check_report: {len(svgs)} charts rendered, no console errors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
