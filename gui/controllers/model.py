"""The model flows of the window: open, reload, restore into a chosen SavedModel, map outputs by hand,
switch checkpoints, and locate what a problem concerns. Qt glue over the session (core.app underneath)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog

from ..qt.settings import settings


class ModelFlows(QObject):
    """Drives the session for the window; what happens is said through ``message``/``failed``."""

    message = Signal(str)
    failed = Signal(str)
    locate_failed = Signal(str)

    def __init__(self, session, bridge, model_box, problems, image_panel, recent, parent=None):
        super().__init__(parent)
        self.session, self.bridge, self.box = session, bridge, model_box
        self.problems, self.image_panel, self.recent = problems, image_panel, recent
        self._dialog_parent = parent
        s = session
        s.opened.connect(self._opened)
        s.inventory_ready.connect(self._inventory_ready)
        s.model_ready.connect(self._model_ready)
        s.report_changed.connect(self._report_changed)
        s.checkpoint_changed.connect(self.box.set_checkpoint)
        s.load_failed.connect(lambda line: self.problems.set_report(None, "not restored — " + line))
        s.read_failed.connect(lambda line: self.box.failed(self.session.path, line))
        s.load_failed.connect(lambda _line: self.offer_models_below())
        s.read_failed.connect(lambda _line: self.offer_models_below())
        s.load_refused.connect(self._load_refused)
        model_box.checkpoint_chosen.connect(self.choose_checkpoint)

    # --- opening ------------------------------------------------------------------------------
    def open(self, path) -> None:
        path = Path(path).expanduser()
        self.message.emit(f"opening {path}")
        self.session.open(path)
        self.recent.add(path)

    def reload(self) -> None:
        if self.session.path is not None:
            self.message.emit(f"reloading {self.session.path}")
            self.session.open(self.session.path, template=self.session.template, **self.session.load_options)

    def choose_folder(self) -> None:
        start = str(self.session.path.parent) if self.session.path else settings().value("last_model_dir", "")
        folder = QFileDialog.getExistingDirectory(self._dialog_parent, "Open model folder", start)
        if folder:
            settings().setValue("last_model_dir", str(Path(folder).parent))
            self.open(folder)

    def choose_file(self) -> None:
        start = settings().value("last_model_dir", "")
        path, _ = QFileDialog.getOpenFileName(self._dialog_parent, "Open model file", start,
                                              "Model files (*.index *.keras *.h5 *.hdf5 saved_model.pb "
                                              "pipeline.config checkpoint);;All files (*)")
        if path:
            self.open(path)

    def offer_models_below(self) -> None:
        """The opened folder holds no model itself but models lie below it: let the user pick one (never
        picked for them), then open it."""
        from PySide6.QtWidgets import QInputDialog

        from detscope.core.browse.discover import NoModelHere, check_opened

        path = self.session.path
        if path is None or not Path(path).is_dir():
            return
        try:
            check_opened(path)
        except NoModelHere as exc:
            items = exc.choices()
            choice, ok = QInputDialog.getItem(self._dialog_parent, "Models below this folder",
                                              f"{exc.headline()}.\nOpen one of these:", items, 0, False)
            if ok and choice in items:
                self.open(exc.models[items.index(choice)].path)
        except Exception:  # noqa: BLE001 - the failure was said already; nothing more to offer
            return

    def choose_template(self) -> None:
        """Restore the open checkpoint into a SavedModel of the same architecture that the user picks."""
        if self.session.path is None:
            self.failed.emit("open a checkpoint folder first (File ▸ Open model folder)")
            return
        start = str(self.session.template or self.session.path.parent)
        folder = QFileDialog.getExistingDirectory(self._dialog_parent, "SavedModel of the same architecture", start)
        if folder:
            self.message.emit(f"restoring {self.session.path.name} into {folder}")
            self.session.open(self.session.path, template=folder)

    def choose_output_mapping(self) -> None:
        """Ask the engine for the model's outputs, then let the user map them and load again."""
        if self.session.path is None:
            self.failed.emit("open a model first (File ▸ Open model folder)")
            return
        self.bridge.watch(self.session.request_mapping_target(), self._map_outputs,
                          lambda exc: self.failed.emit(self.bridge.report(exc, "cannot map outputs")))

    def _map_outputs(self, target) -> None:
        from detscope.core.detect.mappings import save_mapping

        from ..panels.output_mapping import OutputMappingDialog

        dialog = OutputMappingDialog(target, self._dialog_parent)
        if dialog.exec() != OutputMappingDialog.DialogCode.Accepted:
            return
        saved = save_mapping(target.key, dialog.mapping())
        self.message.emit(f"output mapping saved to {saved}; loading {target.model_path.name} again")
        self.reload()

    # --- what the session says ----------------------------------------------------------------
    def _opened(self, path: Path) -> None:
        self.box.opened(path)
        self.image_panel.set_detections(None)     # the last model's boxes are not this one's
        self.problems.clear()
        self.problems.set_report(None, "loading…")

    def _inventory_ready(self, inv) -> None:
        self.box.show_inventory(inv)
        self.problems.set_findings(self.session.findings())
        self.image_panel.set_classes(self.session.class_names())
        self._say_how_built()

    def _model_ready(self, model) -> None:
        self.problems.set_findings(self.session.findings())
        self.image_panel.set_classes(self.session.class_names())
        self.show_restore_banner(model)
        self._say_how_built()

    # --- only a complete restore runs unasked ----------------------------------------------------
    def show_restore_banner(self, model) -> None:
        """Over the image: why an incomplete restore shows nothing (with the way to see it anyway), or
        that what is shown comes from one."""
        if model is None or not model.partial:
            self.image_panel.hide_banner()
        elif not self.session.allow_partial:
            self.image_panel.show_banner(f"Not fully restored — no detections are shown: {model.refusal}",
                                         "error", [("Show detections anyway", self.allow_partial)])
        else:
            self.image_panel.show_banner(f"PARTIAL RESTORE — these detections are not the checkpoint's model: "
                                         f"{model.refusal}", "warning")

    def allow_partial(self) -> None:
        """The user agreed to see detections of an incomplete restore; they are marked as such."""
        self.session.allow_partial = True
        self.message.emit("showing detections of an incomplete restore, marked as such")
        if self.session.model is not None:
            self.session.model_ready.emit(self.session.model)     # viewers run the model again

    def _load_refused(self, exc) -> None:
        """A model that would run code: say what, and load it only if the user says so, for this file."""
        from PySide6.QtWidgets import QMessageBox

        lines = "\n".join(f"• {w}" for w in exc.would_run)
        answer = QMessageBox.warning(
            self._dialog_parent, "This model would run code",
            f"{Path(exc.file).name} was not loaded. Loading it would:\n\n{lines}\n\n"
            "Load it anyway? Only if you trust where it came from.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        if answer == QMessageBox.StandardButton.Yes and self.session.path is not None:
            self.message.emit(f"loading {Path(exc.file).name} as you agreed")
            self.session.open(self.session.path, template=self.session.template,
                              **{**self.session.load_options, **exc.options})

    def _say_how_built(self) -> None:
        """A model a builder made says so in the header: "built from pipeline.config with the Object Detection API"."""
        model = self.session.model
        if model is not None and model.how == "built" and model.report is not None \
                and model.report.target not in self.box.label.text():
            self.box.label.setText(f"{self.box.label.text()} — {model.report.target}")

    def _report_changed(self, report) -> None:
        if report is None:
            self.problems.set_report(None, "the model was loaded as it is (no checkpoint restored)")
        else:
            self.problems.set_report(report)

    # --- checkpoints and locating -------------------------------------------------------------
    def choose_checkpoint(self, name: str) -> None:
        """Switch to ``name`` unless it is both the restored and the shown checkpoint already."""
        current = self.session.model.checkpoint_name if self.session.model is not None else None
        inv = self.session.inventory
        shown = inv.checkpoint.name if inv is not None and inv.checkpoint is not None else None
        if name and (name != current or name != shown):
            self.session.switch_checkpoint(name)

    def node_for(self, payload):
        """The tree node a problems row concerns: a finding (the inventory says which node), or a
        restore-report row's ``("key", key)``; None when it concerns none."""
        model = self.box.tree.model
        if isinstance(payload, tuple) and payload and payload[0] == "key":
            return model.find_key(payload[1]) or model.find_path(payload[1])
        inv = self.session.inventory
        shown = inv is not None and model.root is not None and inv.root is model.root
        return inv.node_for(payload) if shown else None
