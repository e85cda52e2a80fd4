#!/usr/bin/env bash
# Screenshots of TensorBoard over a sweep dir, with headless Chromium (Debian: apt-get install chromium),
# for the README: the HParams, Images and Scalars tabs (tensorboard_<tab>.png in OUT_DIR).
#
#   bash scripts/screenshot_tensorboard.sh logs/train/multiruns/<date> docs/
#
# TensorBoard listens on 127.0.0.1 only, on a port the OS picks, and is stopped by its own PID.
set -euo pipefail
logdir=${1:?usage: $0 LOGDIR OUT_DIR}
out=${2:?usage: $0 LOGDIR OUT_DIR}
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "chromium not found: apt-get install chromium" >&2; exit 1; }
mkdir -p "$out"
log=$(mktemp)
python -m tensorboard.main --logdir "$logdir" --host 127.0.0.1 --port 0 --load_fast false >"$log" 2>&1 &
tb=$!
trap 'kill "$tb" 2>/dev/null || true; wait "$tb" 2>/dev/null || true; rm -f "$log"' EXIT
url=""
for _ in $(seq 1 180); do  # at most 90 s
    url=$(grep -o 'http://127\.0\.0\.1:[0-9]*/' "$log" | head -n 1 || true)
    [ -n "$url" ] && break
    kill -0 "$tb" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.5
done
[ -n "$url" ] || { echo "tensorboard did not start within 90 s" >&2; cat "$log" >&2; exit 1; }
sleep 5  # let it read the event files
for tab in hparams images scalars; do
    timeout 120 "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1500,950 \
        --virtual-time-budget=15000 --screenshot="$out/tensorboard_$tab.png" "${url}#$tab" >/dev/null 2>&1
    echo "$out/tensorboard_$tab.png"
done
