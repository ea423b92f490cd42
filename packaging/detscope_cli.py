"""Entry script of the frozen ``detscope`` executable (packaging/detscope.spec)."""
import sys

if __name__ == "__main__":
    # HDF5 files are first opened by a child process (detscope.core.formats.h5probe); in the app that child is
    # this executable, started with h5probe.CHILD_FLAG.
    from detscope.core.formats import h5probe

    if sys.argv[1:2] == [h5probe.CHILD_FLAG]:
        sys.exit(h5probe.child_main(sys.argv[2:]))
    from detscope.core.cli.main import main

    sys.exit(main())
