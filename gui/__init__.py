"""detscope GUI: the PySide6 window; wiring only, logic lives in detscope.core."""
