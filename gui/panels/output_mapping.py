"""Model ▸ Map outputs by hand: say which output is boxes, scores and classes, for models whose
outputs follow no known convention. The mapping is saved in detscope's data folder (never in the
model folder) by ``detscope.core.detect.conventions.save_mapping``, and the model is loaded again with it."""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QSpinBox

from detscope.core.base.text import fmt_shape
from detscope.core.detect.conventions import BOX_LAYOUTS, OutputMapping

NONE = "(none)"
COORDINATES = {"guess from the values": None, "normalised 0..1": True, "pixels": False}


def _describe(key: str, spec) -> str:
    dtype, shape = spec
    return f"{key}  {dtype} {fmt_shape(shape) or '?'}"


class OutputMappingDialog(QDialog):
    """A form over a signature's outputs; :meth:`mapping` gives the user's answer."""

    def __init__(self, target, parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"Map the outputs of {target.model_path.name} ({target.signature})")
        self.keys = sorted(target.outputs)
        form = QFormLayout(self)
        form.addRow(QLabel("Which output is what? Saved in detscope's data folder, never in the model folder."))
        self.combos = {}
        current = target.current
        for field, required in (("boxes", True), ("scores", False), ("classes", False),
                                ("num_detections", False), ("multiclass_scores", False)):
            combo = QComboBox(self)
            if not required:
                combo.addItem(NONE, None)
            for key in self.keys:
                combo.addItem(_describe(key, target.outputs[key]), key)
            chosen = getattr(current, field, None) if current is not None else None
            if chosen in self.keys:
                combo.setCurrentIndex(combo.findData(chosen))
            self.combos[field] = combo
            form.addRow(field.replace("_", " "), combo)
        self.layout_box = QComboBox(self)
        self.layout_box.addItems(BOX_LAYOUTS)
        self.layout_box.setCurrentText(current.box_layout if current is not None else "yxyx")
        form.addRow("box layout", self.layout_box)
        self.coordinates = QComboBox(self)
        self.coordinates.addItems(list(COORDINATES))
        if current is not None:
            self.coordinates.setCurrentIndex(list(COORDINATES.values()).index(current.normalized))
        form.addRow("coordinates", self.coordinates)
        self.offset = QSpinBox(self)
        self.offset.setRange(-1000, 1000)
        self.offset.setValue(current.class_offset if current is not None else 0)
        self.offset.setToolTip("Added to the model's class values to give the label map's ids")
        form.addRow("class id offset", self.offset)
        self.background = QCheckBox("column 0 of the multiclass scores is the background", self)
        self.background.setChecked(current.multiclass_background if current is not None else True)
        form.addRow("", self.background)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def mapping(self) -> OutputMapping:
        picked = {field: combo.currentData() for field, combo in self.combos.items()}
        return OutputMapping(box_layout=self.layout_box.currentText(),
                             normalized=COORDINATES[self.coordinates.currentText()],
                             class_offset=self.offset.value(), multiclass_background=self.background.isChecked(),
                             convention="user", **picked)
