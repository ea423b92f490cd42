#!/usr/bin/env bash
# Smoke test of the one-folder app (make package), run as on a machine without Python: every command of
# the app runs with an empty environment (env -i PATH=/usr/bin:/bin HOME=<a temporary folder>), no venv on
# PATH, no PYTHONPATH, from a folder outside the clone.
#
#   bash packaging/smoke.sh [--screenshot FILE.png] [--compare] [APP_DIR]     (APP_DIR: dist/detscope)
#
# 1. `detscope inspect` on the bundled demo: exit 0, the demo's checkpoints and label map printed.
# 2. `detscope detect` on the demo's 36 test images: exit 0, one header line per image, detections with
#    scores printed; with strace present, that no file was opened from a Python installation (a venv,
#    site-packages, the build machine's Python) while doing so.
#    Then `detscope eval` on the demo: its COCO AP50 (faster-coco-eval) is metrics.json's 0.944.
# 3. Where .venv exists (the build machine): a Keras 3 file, a Keras 2 HDF5 file only tf_keras reads, and
#    the demo converted to .tflite (LiteRT), made by packaging/smoke_models.py; `detscope detect` on each.
# 4. `detscope-gui --exit-when-shown` and `detscope gui --exit-when-shown` under xvfb-run: exit 0 and
#    "window-shown" printed (skipped, saying so, where xvfb-run is missing). --screenshot FILE.png also
#    opens the demo in the window, then kiosk mode on its test images, waits SMOKE_SHOT_WAIT (30) s for
#    each to detect and saves the X screen to FILE.png and FILE-kiosk.png (needs ImageMagick's `import`).
# --compare: start-up times of the frozen app against .venv's (or $SMOKE_COMPARE_VENV's): 5 runs each,
#    the median, with a warm file cache.
set -euo pipefail

SHOT="" COMPARE=0 APP=""
while [ $# -gt 0 ]; do
  case "$1" in
    --screenshot) SHOT=$(realpath -m "$2"); shift 2 ;;
    --compare) COMPARE=1; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) APP=$1; shift ;;
  esac
done
REPO=$(cd "$(dirname "$0")/.." && pwd)
APP=$(cd "${APP:-$REPO/dist/detscope}" 2>/dev/null && pwd) || { echo "smoke: no app folder (run make package first)" >&2; exit 2; }
CLI=$APP/detscope GUI=$APP/detscope-gui
DEMO=$APP/_internal/detscope/resources/demo
for f in "$CLI" "$GUI" "$DEMO/saved_model/saved_model.pb" "$DEMO/test/images"; do
  [ -e "$f" ] || { echo "smoke: FAIL: $f is missing from the app" >&2; exit 1; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/home" "$tmp/work"
cd "$tmp/work"                                   # nothing of the clone is in the current folder
bare() { env -i PATH=/usr/bin:/bin HOME="$tmp/home" "$@"; }
fail() { echo "smoke: FAIL: $*" >&2; [ -f "$tmp/err" ] && tail -20 "$tmp/err" >&2; exit 1; }
now() { date +%s.%N; }
took() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.2f", a - b }'; }
passed=0
ok() { passed=$((passed + 1)); echo "smoke: ok  $*"; }

echo "smoke: $APP ($(du -sh "$APP" | cut -f1)), environment: env -i PATH=/usr/bin:/bin HOME=$tmp/home"

# 1. inspect (no TensorFlow)
t=$(now)
bare "$CLI" inspect "$DEMO" >"$tmp/out" 2>"$tmp/err" || fail "detscope inspect exited $?"
grep -q "ckpt-5" "$tmp/out" && grep -q "Label map" "$tmp/out" || fail "inspect printed no checkpoints or label map"
ok "detscope inspect demo ($(took "$t") s)"

# 2. detect on the demo's test images, watching which files are opened
trace=()
if command -v strace >/dev/null 2>&1; then trace=(strace -f -qq -e trace=openat,execve -o "$tmp/trace"); fi
t=$(now)
bare "${trace[@]}" "$CLI" detect "$DEMO" "$DEMO/test/images" --threshold 0.5 >"$tmp/out" 2>"$tmp/err" \
  || fail "detscope detect exited $?"
images=$(grep -c "detections$" "$tmp/out" || true)
boxes=$(grep -cE "^  [0-9]\.[0-9]{3}  .+ \(class [0-9]+\)  \[" "$tmp/out" || true)
[ "$images" -eq 36 ] || fail "detect printed $images image lines, not 36"
[ "$boxes" -ge 36 ] || fail "detect printed $boxes detections on 36 images"
ok "detscope detect demo: 36 images, $boxes detections ($(took "$t") s${trace:+, under strace})"
if [ ${#trace[@]} -gt 0 ]; then
  # Only opens that succeeded (the bundled libpython keeps its build machine's RUNPATH, whose misses are
  # harmless); a call strace split between threads ("<unfinished ...>") is left out rather than guessed at.
  if grep -vE '= -1 E[A-Z]+ |<unfinished' "$tmp/trace" | grep -E '"[^"]*(site-packages|dist-packages|/\.venv/|/\.pyenv/|/lib/python3\.[0-9]+/)[^"]*"' \
      | grep -v "\"$APP/" > "$tmp/leaks"; then
    head -5 "$tmp/leaks" >&2
    fail "the app opened files of a Python installation outside itself"
  fi
  ok "no file opened from a Python installation outside the app"
else
  echo "smoke: skip the check of opened files (no strace)"
fi

# 2b. eval: the demo's COCO figures (faster-coco-eval), as resources/demo/metrics.json has them
t=$(now)
bare "$CLI" eval "$DEMO" "$DEMO/test/images" >"$tmp/out" 2>"$tmp/err" || fail "detscope eval exited $?"
grep -q "AP50 0.944" "$tmp/out" || { head -3 "$tmp/out" >&2; fail "eval: the demo's COCO AP50 is not 0.944"; }
ok "detscope eval demo: $(grep -m1 '^COCO' "$tmp/out") ($(took "$t") s)"

# 3. Keras 3, tf_keras and LiteRT models (made with the venv, run by the app)
if [ -x "$REPO/.venv/bin/python" ]; then
  "$REPO/.venv/bin/python" "$REPO/packaging/smoke_models.py" "$tmp/models" >"$tmp/err" 2>&1 || fail "smoke_models.py failed"
  for model in k3.keras k2.h5; do
    bare "$CLI" detect "$tmp/models/$model" "$tmp/models/x.png" --threshold 0 --labels "$tmp/models/labels.txt" \
      >"$tmp/out" 2>"$tmp/err" || fail "detect $model exited $?"
    grep -q "0.900  person (class 1)  \[10.0, 20.0, 50.0, 60.0\]" "$tmp/out" || { cat "$tmp/out" >&2; fail "detect $model: wrong detections"; }
  done
  ok "Keras 3 (.keras) and Keras 2 (.h5, through tf_keras) files detect"
  # HDF5 files are opened first by a child process: in the app, its own executable with the probe's flag
  for exe in "$CLI" "$GUI"; do
    bare "$exe" --detscope-h5probe "$tmp/models/k2.h5" "" 1000000 >"$tmp/out" 2>"$tmp/err" \
      || { cat "$tmp/err" >&2; fail "$(basename "$exe") --detscope-h5probe exited $?"; }
  done
  ok "the HDF5 probe's child runs in both executables"
  bare "$CLI" inspect "$tmp/models/tflite" >"$tmp/out" 2>"$tmp/err" || fail "inspect .tflite exited $?"
  grep -q "TFLite schema" "$tmp/out" || fail "inspect .tflite printed no TFLite model"
  bare "$CLI" detect "$tmp/models/tflite" "$DEMO/test/images/shapes_000.png" --threshold 0.5 >"$tmp/out" 2>"$tmp/err" \
    || fail "detect .tflite exited $?"
  grep -qE "^  0\.[0-9]{3}  circle \(class 1\)" "$tmp/out" || { cat "$tmp/out" >&2; fail "detect .tflite: no circle found"; }
  ok ".tflite model: inspect (tflite package) and detect (LiteRT)"
else
  echo "smoke: skip Keras/tf_keras/TFLite models (no .venv to make them with)"
fi

# 4. the window
if command -v xvfb-run >/dev/null 2>&1; then
  t=$(now)
  bare xvfb-run -a -s "-screen 0 1400x900x24" "$GUI" --exit-when-shown >"$tmp/out" 2>"$tmp/err" \
    || fail "detscope-gui --exit-when-shown exited $?"
  grep -q "^window-shown" "$tmp/out" || fail "detscope-gui printed no window-shown line"
  ok "detscope-gui under Xvfb: $(grep '^window-shown' "$tmp/out") (process: $(took "$t") s with Xvfb's start)"
  # the same window through the command line's executable, which starts without PyInstaller's Qt hook
  # the window's model lives in a child process, which is this executable again: load the demo and detect
  t=$(now)
  bare xvfb-run -a -s "-screen 0 1400x900x24" "$GUI" --exit-when-detected >"$tmp/out" 2>"$tmp/err" \
    || fail "detscope-gui --exit-when-detected exited $?: $(cat "$tmp/out")"
  grep -q "^detected [1-9][0-9]* tensorflow=False" "$tmp/out" || fail "the window did not detect through its model process: $(cat "$tmp/out")"
  ok "detscope-gui loaded the demo in its model process and detected: $(cat "$tmp/out") ($(took "$t") s)"
  bare xvfb-run -a -s "-screen 0 1400x900x24" "$CLI" gui --exit-when-shown >"$tmp/out" 2>"$tmp/err" \
    || fail "detscope gui --exit-when-shown exited $?"
  grep -q "^window-shown" "$tmp/out" || fail "detscope gui printed no window-shown line"
  ok "detscope gui (the window from the command line's executable)"
  if [ -n "$SHOT" ]; then
    command -v import >/dev/null 2>&1 || fail "--screenshot needs ImageMagick's import (apt-get install -y imagemagick)"
    # the window on the demo (no arguments), then kiosk mode on its test images: FILE.png, FILE-kiosk.png
    KSHOT=${SHOT%.png}-kiosk.png
    mkdir -p "$(dirname "$SHOT")"
    cat > "$tmp/shot.sh" <<EOF
#!/usr/bin/env bash
shot() {   # shot FILE COMMAND...: start the app, let the model load and detect, grab the X screen
  local out=\$1; shift
  "\$@" >>"$tmp/gui.log" 2>&1 &
  local pid=\$!
  sleep ${SMOKE_SHOT_WAIT:-30}
  import -window root "\$out"
  kill \$pid; wait \$pid || true
}
shot "$SHOT" "$GUI"
shot "$KSHOT" "$GUI" --kiosk "$DEMO" --source "$DEMO/test/images"
EOF
    chmod +x "$tmp/shot.sh"
    bare xvfb-run -a -s "-screen 0 1400x900x24" "$tmp/shot.sh"
    [ -s "$SHOT" ] && [ -s "$KSHOT" ] || fail "no screenshot written"
    ok "screenshots of the frozen app: $SHOT, $KSHOT"
  fi
else
  echo "smoke: skip the window (no xvfb-run: apt-get install -y xvfb)"
fi

# --compare: start-up, frozen against a venv
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
timed() { local t; t=$(now); "$@" >/dev/null 2>&1 || true; took "$t"; echo; }
if [ "$COMPARE" = 1 ]; then
  VENV=${SMOKE_COMPARE_VENV:-$REPO/.venv}/bin
  [ -x "$VENV/detscope" ] || fail "--compare needs $VENV/detscope (make run sets it up)"
  img=$DEMO/test/images/shapes_000.png
  for who in frozen venv; do
    if [ $who = frozen ]; then c=$CLI g=$GUI; else c=$VENV/detscope g=$VENV/detscope-gui who=${VENV%/bin}; fi
    d=$(for i in 1 2 3 4 5; do timed bare "$c" detect "$DEMO" "$img"; done | median)
    s=$(for i in 1 2 3 4 5; do bare "$c" inspect "$DEMO" --json >/dev/null 2>&1; done; \
        for i in 1 2 3 4 5; do timed bare "$c" inspect "$DEMO" --json; done | median)
    w=""
    if command -v xvfb-run >/dev/null 2>&1; then
      # the window's process, start to shown, under one Xvfb started beforehand
      w=$(bare xvfb-run -a -s "-screen 0 1400x900x24" bash -c '
            m() { sort -n | awk "{a[NR]=\$1} END {print a[int((NR+1)/2)]}"; }
            for i in 1 2 3 4 5; do s=$(date +%s.%N); "$0" --exit-when-shown >/dev/null 2>&1; e=$(date +%s.%N); awk -v a=$e -v b=$s "BEGIN { printf \"%.3f\n\", a - b }"; done | m' "$g")
    fi
    printf 'smoke: start-up of %s: detect, process to first detection %.2f s; inspect --json %.2f s; window shown (whole process) %s s\n' \
      "$who" "$d" "$s" "${w:-n/a}"
  done
fi

echo "smoke: $passed passed, 0 failed"
