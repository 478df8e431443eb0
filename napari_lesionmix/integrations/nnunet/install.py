"""Make ``nnUNetTrainerLesionMix`` visible to ``nnUNetv2_train -tr``, and undo it.

nnU-Net v2 looks for a trainer by its class name among the modules of its own package
folder ``nnunetv2/training/nnUNetTrainer`` (recent versions, 2.8.1 here, also in the folders
listed in the ``nnUNet_extTrainer`` environment variable). :func:`install_trainer` writes there one small
module, ``nnUNetTrainerLesionMix.py``, that imports the trainer from napari-lesionmix;
:func:`uninstall_trainer` removes it. Neither touches a file it did not write: the module
carries a marker line, and a file of that name without it is refused. Nothing is imported
from nnU-Net to find its folder.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ...core.io_utils import atomic_write_text

__all__ = ["MARKER", "SHIM_NAME", "install_trainer", "nnunet_trainer_folder", "uninstall_trainer",
           "InstallError"]

SHIM_NAME = "nnUNetTrainerLesionMix.py"
MARKER = "# napari-lesionmix trainer shim v1"
SHIM = f'''{MARKER}
# Written by `lesionmix nnunet install-trainer` so that nnU-Net v2 finds LesionMix's trainer:
#     nnUNetv2_train DATASET CONFIGURATION FOLD -tr nnUNetTrainerLesionMix
# `lesionmix nnunet uninstall-trainer` removes this file. It only imports the trainer.
from napari_lesionmix.integrations.nnunet.trainer import nnUNetTrainerLesionMix  # noqa: F401
'''


class InstallError(RuntimeError):
    """The shim cannot be written or removed; the message names the file and why."""


def nnunet_trainer_folder() -> Path:
    """``nnunetv2/training/nnUNetTrainer`` of the nnU-Net this Python imports."""
    spec = importlib.util.find_spec("nnunetv2")
    if spec is None or not spec.submodule_search_locations:
        raise InstallError("nnU-Net v2 is not installed in this Python "
                           "(pip install 'napari-lesionmix[nnunet]')")
    return Path(list(spec.submodule_search_locations)[0]) / "training" / "nnUNetTrainer"


def _target(folder: str | Path | None) -> Path:
    base = nnunet_trainer_folder() if folder is None else Path(folder)
    if not base.is_dir():
        raise InstallError(f"{base}: no such folder")
    return base / SHIM_NAME


def _ours(path: Path) -> bool:
    try:
        return path.read_text(encoding="utf-8").startswith(MARKER)
    except (OSError, UnicodeDecodeError):
        return False


def install_trainer(folder: str | Path | None = None) -> tuple[Path, str]:
    """Write the shim into ``folder`` (default: nnU-Net's trainer folder).

    Returns
    -------
    (path, what) : the shim's path and ``"installed"``, ``"updated"`` or ``"unchanged"``
    """
    path = _target(folder)
    if path.exists() and not _ours(path):
        raise InstallError(f"{path}: exists and was not written by napari-lesionmix; "
                           "refusing to overwrite it")
    if path.exists() and path.read_text(encoding="utf-8") == SHIM:
        return path, "unchanged"
    what = "updated" if path.exists() else "installed"
    try:
        atomic_write_text(path, SHIM)
    except OSError as exc:
        raise InstallError(f"{path}: cannot write ({exc.strerror}); write it elsewhere with "
                           "--into DIR and export nnUNet_extTrainer=DIR") from None
    return path, what


def uninstall_trainer(folder: str | Path | None = None) -> tuple[Path, str]:
    """Remove the shim from ``folder`` (default: nnU-Net's trainer folder).

    Returns
    -------
    (path, what) : the shim's path and ``"removed"`` or ``"absent"``
    """
    path = _target(folder)
    if not path.exists():
        return path, "absent"
    if not _ours(path):
        raise InstallError(f"{path}: was not written by napari-lesionmix; refusing to remove it")
    try:
        path.unlink()
        for cached in (path.parent / "__pycache__").glob(f"{path.stem}.*.pyc"):
            cached.unlink()
    except OSError as exc:
        raise InstallError(f"{path}: cannot remove ({exc.strerror})") from None
    return path, "removed"
