"""``nnUNetTrainerLesionMix``: nnU-Net v2's trainer with LesionMix in its training data
augmentation (``pip install 'napari-lesionmix[nnunet]'``).

Make it visible to ``nnUNetv2_train`` with ``lesionmix nnunet install-trainer``, then::

    nnUNetv2_train DATASET 3d_fullres FOLD -tr nnUNetTrainerLesionMix

What it adds to nnU-Net's own trainer, nothing else:

- at the start of training, the fold's prepared folder
  ``$nnUNet_preprocessed/<dataset>/lesionmix/<plans>__<configuration>/fold_<fold>/``:
  the lesion bank, the likelihood map (on every case's grid) and the reference loads,
  from the fold's preprocessed training cases as ``do_split`` gives them (never a
  validation case). It is reused while the training cases and the recipe stay the same;
- :class:`~.transform.LesionMixTransform` first in the training transforms (before
  nnU-Net's spatial transforms), and nnU-Net's data loader telling it where each patch
  comes from (:class:`~.transform.LesionMixDataLoader`);
- one line per epoch in the training log: the samples LesionMix changed, the lesions it
  added and removed, and the time it took.

The recipe is ``$LESIONMIX_RECIPE``, else ``lesionmix_recipe.json`` in the dataset's
preprocessed folder, else in its raw folder, else the built-in recipe; its ``online``
section says how often a sample is changed and whether lesions may be removed.
Validation, inference and the network are nnU-Net's own.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import nnunetv2.training.nnUNetTrainer.nnUNetTrainer as _nnunet_trainer_module
from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from ..online import OnlineLesionMix
from .fold import FoldSource, find_recipe, prepare_fold
from .transform import Counters, LesionMixDataLoader, LesionMixTransform

__all__ = ["nnUNetTrainerLesionMix"]


@contextmanager
def _lesionmix_loaders():
    """Let nnU-Net's ``get_dataloaders`` build :class:`LesionMixDataLoader` (nnU-Net's
    loader plus the notes the transform needs), whatever that method's body holds."""
    original = _nnunet_trainer_module.nnUNetDataLoader
    _nnunet_trainer_module.nnUNetDataLoader = LesionMixDataLoader
    try:
        yield
    finally:
        _nnunet_trainer_module.nnUNetDataLoader = original


class nnUNetTrainerLesionMix(nnUNetTrainer):
    """nnU-Net's trainer with LesionMix first in its training transforms."""

    def _lesionmix_setup(self) -> OnlineLesionMix:
        if len(self.configuration_manager.patch_size) != 3:
            raise RuntimeError("nnUNetTrainerLesionMix works on 3D configurations (3d_fullres, "
                               f"3d_lowres); {self.configuration_name!r} is 2D")
        if self.label_manager.has_regions:
            raise RuntimeError("nnUNetTrainerLesionMix needs integer labels, not regions")
        dataset = self.plans_manager.dataset_name
        recipe, where = find_recipe(dataset)
        tr_keys, val_keys = self.do_split()
        source = FoldSource(self.preprocessed_dataset_folder, tr_keys, self.dataset_class,
                            self.dataset_json["labels"], self.configuration_manager.spacing,
                            self.plans_manager.transpose_forward, recipe.organ_label)
        out = (Path(self.preprocessed_dataset_folder_base) / "lesionmix"
               / f"{self.plans_manager.plans_name}__{self.configuration_name}"
               / f"fold_{self.fold}")
        self.print_to_log_file(f"LesionMix: recipe {where}")
        data, built = prepare_fold(source, recipe, out, f"{dataset} {self.configuration_name} "
                                                        f"fold {self.fold}")
        used = sorted({e.lesion.case_name for e in data.bank.entries})
        if set(used) & set(val_keys) or set(data.cases) & set(val_keys):
            raise RuntimeError(f"LesionMix: {out} holds validation cases of fold {self.fold}")
        r = data.recipe
        self.print_to_log_file(
            f"LesionMix: {'built' if built else 'reusing'} {out}: {len(data.bank)} lesions from "
            f"{len(used)} of the {len(tr_keys)} training cases of fold {self.fold} (the "
            f"{len(val_keys)} validation cases are not used), map "
            f"{'on every case grid' if data.lmap is not None else 'none (uniform)'}; "
            f"p={r.online.p}, direction={r.online.direction}, "
            f"load_distribution={r.load_distribution}")
        for line in data.notices:
            self.print_to_log_file(f"LesionMix: {line}")
        return OnlineLesionMix(data)

    def get_dataloaders(self):
        if self.dataset_class is None:
            from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class
            self.dataset_class = infer_dataset_class(self.preprocessed_dataset_folder)
        self._lesionmix = self._lesionmix_setup()
        self._lesionmix_counts = Counters()
        with _lesionmix_loaders():
            return super().get_dataloaders()

    def get_training_transforms(self, patch_size, rotation_for_DA, deep_supervision_scales,
                                mirror_axes, do_dummy_2d_data_aug, *args, **kwargs):
        """nnU-Net's training transforms with :class:`LesionMixTransform` first."""
        base = nnUNetTrainer.get_training_transforms(patch_size, rotation_for_DA,
                                                     deep_supervision_scales, mirror_axes,
                                                     do_dummy_2d_data_aug, *args, **kwargs)
        mix = getattr(self, "_lesionmix", None)
        if mix is None:
            return base
        first = LesionMixTransform(mix, getattr(self, "_lesionmix_counts", None))
        return ComposeTransforms([first] + list(base.transforms))

    def on_train_epoch_end(self, train_outputs):
        super().on_train_epoch_end(train_outputs)
        counts = getattr(self, "_lesionmix_counts", None)
        if counts is None:
            return
        c = counts.since_last()
        self.print_to_log_file(
            f"LesionMix epoch {self.current_epoch}: {int(c['samples'])} training patches, "
            f"{int(c['applied'])} drawn for LesionMix ({int(c['unchanged'])} of them left "
            f"unchanged), {int(c['added'])} lesions added, {int(c['removed'])} removed, "
            f"{c['seconds']:.2f} s in LesionMix (counted since the previous line: nnU-Net's "
            "loaders run ahead of training)")
