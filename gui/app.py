"""``detscope-gui [MODEL] [IMAGE_OR_FOLDER...]``: the window first, TensorFlow behind it.

The window is shown before anything slow happens: the model folder is read on a
worker thread and the model loads on the engine thread (which is where
TensorFlow is first imported). With no arguments the bundled demo model opens
with its test images.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

STARTED = time.perf_counter()
DEMO = Path(__file__).resolve().parents[1] / "resources" / "demo"
ENGINE_GRACE_S = 3.0     # how long a closing window lets running TensorFlow work notice its cancellation


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
    parser.add_argument("--exit-when-shown", action="store_true",
                        help="print how long the window took to appear, then quit (for benchmarks)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("detscope")
    app.setOrganizationName("detscope")
    from .main_window import MainWindow

    window = MainWindow()
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
    else:
        window.say("the demo model is not here (make demo); open a model folder with Ctrl+O")
    code = app.exec()
    return _exit(window, code)


def _exit(window, code: int) -> int:
    """Give running TensorFlow work a moment to stop; never hang the process on it."""
    window.shutdown()
    thread = getattr(window.engine, "_thread", None)
    if thread is not None:
        thread.join(ENGINE_GRACE_S)
        if thread.is_alive():
            # Work that cannot be interrupted (TensorFlow's own import) would keep the process alive.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
