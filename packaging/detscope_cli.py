"""Entry script of the frozen ``detscope`` executable (packaging/detscope.spec)."""
import sys

from detscope.core.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
