"""Entry script of the frozen ``detscope-gui`` executable (packaging/detscope.spec)."""
import sys

from detscope.gui.app import main

if __name__ == "__main__":
    sys.exit(main())
