"""``python -m detscope.core.cli``: the same as the ``detscope`` command."""

from .main import main

raise SystemExit(main())
