"""Entry script of the frozen ``detscope-gui`` executable (packaging/detscope.spec)."""
import sys

if __name__ == "__main__":
    # HDF5 files are first opened by a child process (detscope.core.formats.h5probe); in the app that child is
    # this executable, started with h5probe.CHILD_FLAG.
    from detscope.core.formats import h5probe

    if sys.argv[1:2] == [h5probe.CHILD_FLAG]:
        sys.exit(h5probe.child_main(sys.argv[2:]))
    # The window's model lives in a child process (detscope.core.app.modelproc): this executable again.
    from detscope.core.app import modelproc

    if sys.argv[1:2] == [modelproc.CHILD_FLAG]:
        from detscope.core.app.modelchild import child_main

        sys.exit(child_main())
    from detscope.gui.app import main

    sys.exit(main())
