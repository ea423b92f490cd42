"""``detscope-gui [MODEL] [IMAGE_OR_FOLDER...]``: the window first, TensorFlow behind it.

The window is shown before anything slow happens: the model folder is read on a
worker thread and the model loads on the engine thread (which is where
TensorFlow is first imported). With no arguments the bundled demo model opens
with its test images.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Callable

STARTED = time.perf_counter()
DEMO = Path(__file__).resolve().parents[1] / "resources" / "demo"
ENGINE_GRACE_S = 3.0     # how long a closing window lets running TensorFlow work notice its cancellation
log = logging.getLogger("detscope.gui")


def demo_paths() -> list[str]:
    if not (DEMO / "saved_model" / "saved_model.pb").is_file() and not (DEMO / "training").is_dir():
        return []
    images = DEMO / "test" / "images"
    return [str(DEMO)] + ([str(images)] if images.is_dir() else [])


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="detscope-gui",
        description="Browse, restore and look at a TensorFlow object-detection model. With no arguments the "
                    "bundled demo model opens with its test images.")
    parser.add_argument("paths", nargs="*", metavar="MODEL_OR_IMAGES",
                        help="a model folder or file, then images, folders of images or a video")
    kiosk = parser.add_argument_group("kiosk mode (full screen, unattended; keys: + - Space S R, hold Esc to leave)")
    kiosk.add_argument("--kiosk", metavar="MODEL", help="run MODEL on --source full screen, with no menus or docks")
    kiosk.add_argument("--source", metavar="SOURCE",
                       help="camera:N, a video file, a folder of images or a stream URL (files and folders loop)")
    kiosk.add_argument("--threshold", type=float, default=0.5, help="score threshold (default 0.5)")
    kiosk.add_argument("--every", type=int, default=1, metavar="N",
                       help="infer every Nth frame and keep the last boxes between (slow CPUs)")
    kiosk.add_argument("--max-width", type=int, metavar="PIXELS", help="downscale frames to this width first")
    kiosk.add_argument("--threads", type=int, metavar="N",
                       help="TensorFlow's intra- and inter-op threads (default: TensorFlow's choice)")
    kiosk.add_argument("--windowed", action="store_true", help=argparse.SUPPRESS)   # tests and screenshots
    parser.add_argument("--exit-when-shown", action="store_true",
                        help="print how long the window took to appear, then quit (for benchmarks)")
    parser.add_argument("--exit-when-detected", action="store_true", help=argparse.SUPPRESS)   # packaging's smoke test
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("detscope")
    app.setOrganizationName("detscope")
    if args.kiosk:
        return run_kiosk(app, args)
    from .main_window import MainWindow

    window = MainWindow()
    install_excepthooks(window.bridge)
    window.show()
    if args.exit_when_shown:
        def shown():
            print(f"window-shown {time.perf_counter() - STARTED:.4f} tensorflow={'tensorflow' in sys.modules}",
                  flush=True)
            window.close()
        QTimer.singleShot(0, shown)
        app.exec()
        return _exit(window, 0)

    paths = args.paths or demo_paths()
    if paths:
        QTimer.singleShot(0, lambda: window.open_paths(paths))
    if args.exit_when_detected:
        return _exit(window, _until_detected(app, window))
    else:
        window.say("the demo model is not here (make demo); open a model folder with Ctrl+O")
    code = app.exec()
    return _exit(window, code)


def _until_detected(app, window, seconds: float = 300) -> int:
    """Run until the first image's detections are drawn (0), the model fails to load (1) or time is up (1);
    print which, and whether this process imported TensorFlow (its model lives in a process of its own)."""
    from PySide6.QtCore import QTimer

    outcome: list[int] = []

    def done(code: int, line: str) -> None:
        if not outcome:
            outcome.append(code)
            print(line, flush=True)
            window.close()

    window.session.load_failed.connect(lambda line: done(1, f"load-failed {line}"))
    deadline = time.monotonic() + seconds

    def check() -> None:
        kept = window.image_panel.kept
        if kept is not None:
            done(0, f"detected {len(kept)} tensorflow={'tensorflow' in sys.modules}")
        elif time.monotonic() > deadline:
            done(1, "no detections in time")

    timer = QTimer()
    timer.timeout.connect(check)
    timer.start(100)
    app.exec()
    return outcome[0] if outcome else 1


def set_threads(threads: int | None) -> None:
    """TensorFlow reads its thread counts from the environment when it starts (on the engine thread)."""
    if threads:
        os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
        os.environ["TF_NUM_INTEROP_THREADS"] = str(max(1, min(2, threads)))


def run_kiosk(app, args) -> int:
    """``--kiosk MODEL --source S``: the kiosk alone, full screen, until Esc is held."""
    from concurrent.futures import ThreadPoolExecutor

    from detscope.core.base.errors import USER_ERRORS
    from detscope.core.runtime.engine import Engine

    from .controllers.kiosk import make_source
    from .controllers.session import ModelSession
    from .kiosk_window import KioskWindow
    from .qt.bridge import Bridge

    if not args.source:
        sys.stderr.write("error: --kiosk needs --source (camera:N, a video file, a folder of images or a URL)\n")
        return 2
    if args.every < 1:
        sys.stderr.write("error: --every needs a number of frames >= 1\n")
        return 2
    try:
        source = make_source(args.source)
    except USER_ERRORS as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    set_threads(args.threads)
    bridge = Bridge()
    engine = Engine(on_progress=bridge.post_progress)
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="detscope-io")
    session = ModelSession(engine, bridge, pool)
    window = KioskWindow(session, bridge, threshold=args.threshold, every=args.every, max_width=args.max_width)
    install_excepthooks(bridge)
    session.open(args.kiosk)
    window.start(source)
    window.show() if args.windowed else window.show_full_screen()
    code = app.exec()
    window.controller.stop()
    session.close_model()
    engine.shutdown(wait=False, cancel_pending=True)
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + ENGINE_GRACE_S
    if not engine.join(ENGINE_GRACE_S) or _workers_alive(deadline):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def install_excepthooks(bridge) -> Callable[[], None]:
    """Send every error nothing caught to the window as one line, and log it; the undo is returned.

    ``sys.excepthook`` sees what a Qt callback on the GUI thread raises (PySide hands it there),
    ``threading.excepthook`` what a thread raises. Both go through ``bridge.post_report``: the status
    bar and the problems panel show the line, and the log keeps the traceback. Without a window to
    show it on (closed), the hook that was there before prints it, so nothing is ever silent.
    """
    from detscope.core.base.errors import USER_ERRORS

    before_sys, before_threads = sys.excepthook, threading.excepthook

    def shown(exc: BaseException, context: str = "") -> bool:
        if isinstance(exc, USER_ERRORS):       # Bridge.report logs the others with their traceback
            log.warning("%s%s", f"{context}: " if context else "", exc)
        return bridge.post_report(exc, context)

    def sys_hook(exc_type, exc, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt) or exc is None or not shown(exc.with_traceback(tb)):
            before_sys(exc_type, exc, tb)

    def thread_hook(args) -> None:
        if args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread is not None else "a thread"
        if args.exc_value is None or not shown(args.exc_value.with_traceback(args.exc_traceback), name):
            before_threads(args)

    sys.excepthook, threading.excepthook = sys_hook, thread_hook

    def uninstall() -> None:
        sys.excepthook, threading.excepthook = before_sys, before_threads

    return uninstall


def _exit(window, code: int) -> int:
    """Give running work a moment to stop; never hang the process on it."""
    window.shutdown()
    deadline = time.monotonic() + ENGINE_GRACE_S
    if not window.engine.join(ENGINE_GRACE_S) or _workers_alive(deadline):
        # Work that cannot be interrupted (TensorFlow's own import, a read that never returns) would keep
        # the process alive: Python waits for a pool's threads at exit.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _workers_alive(deadline: float) -> bool:
    """Whether a thread Python would wait for at exit (a pool's worker) is still busy at ``deadline``."""
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                return True
    return False


if __name__ == "__main__":
    sys.exit(main())
