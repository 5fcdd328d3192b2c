#!/usr/bin/env bash
# Open a neurofem report in headless Chromium and fail on any console error, a missing
# image or an empty page.   Usage: scripts/check-report-chromium.sh RUN_DIR/report.html
# Needs a Chromium binary (Debian/Ubuntu: apt-get install -y chromium; or set CHROMIUM).
set -euo pipefail
report=$(realpath "${1:?usage: $0 RUN_DIR/report.html}")
browser=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)}
if [ -z "$browser" ]; then
    echo "check-report-chromium: no chromium found (apt-get install -y chromium, or set CHROMIUM)" >&2
    exit 2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# --dump-dom prints the DOM after load; console messages go to the log with --enable-logging.
"$browser" --headless=new --no-sandbox --disable-gpu --allow-file-access-from-files \
    --enable-logging=stderr --v=0 --user-data-dir="$tmp/profile" \
    --dump-dom "file://$report" >"$tmp/dom.html" 2>"$tmp/log.txt" || true
if grep -E "Uncaught|CONSOLE\(.*\).*[Ee]rror|Failed to load resource|net::ERR_" "$tmp/log.txt"; then
    echo "check-report-chromium: $report: errors while loading (above)" >&2
    exit 1
fi
if ! grep -q "<table" "$tmp/dom.html"; then
    echo "check-report-chromium: $report: no table in the rendered DOM" >&2
    exit 1
fi
n_img=$(grep -o "<img " "$tmp/dom.html" | wc -l)
"$browser" --headless=new --no-sandbox --disable-gpu --user-data-dir="$tmp/profile" \
    --screenshot="$tmp/page.png" --window-size=1280,4000 "file://$report" >/dev/null 2>&1 || true
[ -s "$tmp/page.png" ] || { echo "check-report-chromium: no screenshot rendered" >&2; exit 1; }
echo "check-report-chromium: $report loads without errors ($n_img images, tables present)"
