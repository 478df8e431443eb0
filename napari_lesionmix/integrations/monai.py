"""LesionMix as a MONAI dictionary transform (``pip install 'napari-lesionmix[monai]'``).

:class:`RandLesionMixd` draws, per sample, whether to apply (the recipe's ``online.p``, or
``prob``) and one seed, both from its own ``self.R``: MONAI's ``set_random_state``, its
``DataLoader`` (which gives each worker process its own seeded state, so workers never
repeat each other's draws) and ``set_determinism`` make runs reproducible. Images keep
their MetaTensor metadata and affine (RAS by MONAI's default, LPS when the metadata says
``space: LPS``) and their intensity units.

Examples
--------
>>> from monai.transforms import Compose, LoadImaged                            # doctest: +SKIP
>>> from napari_lesionmix.integrations.monai import RandLesionMixd              # doctest: +SKIP
>>> t = Compose([LoadImaged(["image", "label"], ensure_channel_first=True),     # doctest: +SKIP
...              RandLesionMixd(["image"], "label", "prepared/")])
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from pathlib import Path

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, RandomizableTransform

from ..core.image_io import cast_to
from ..core.io_utils import image_stem
from ..core.recipe import Recipe
from .affine import from_engine, geometry_from_affine, to_engine
from .online import OnlineLesionMix, Sample

__all__ = ["RandLesionMixd"]


class RandLesionMixd(RandomizableTransform, MapTransform):
    """Add and remove lesions with LesionMix on a dictionary sample.

    Parameters
    ----------
    keys : str or sequence of str
        The image keys, in the lesion bank's channel order (each ``(C, H, W, D)``).
    label_key : str
        The label map (``(1, H, W, D)``).
    prepared : path-like, PreparedData or OnlineLesionMix
        A folder written by ``lesionmix prepare`` (each worker maps its bank), or objects
        in memory (:meth:`PreparedData.from_objects`).
    recipe : Recipe, optional
        Default: the prepared folder's.
    prob : float, optional
        Probability of applying; default the recipe's ``online.p``.
    name_key : str, optional
        A key holding the case's name; default the label's file name (MetaTensor
        ``filename_or_obj``) without extension.
    summary_key : str, optional
        If given, each sample gets there what was done: ``applied``, ``added``,
        ``removed``, ``target_mm3``, ``achieved_mm3`` (numbers, so batches collate).
    allow_missing_keys : bool
    """

    def __init__(self, keys: KeysCollection, label_key: str, prepared,
                 recipe: Recipe | None = None, prob: float | None = None,
                 name_key: str | None = None, summary_key: str | None = None,
                 allow_missing_keys: bool = False) -> None:
        mix = prepared if isinstance(prepared, OnlineLesionMix) else OnlineLesionMix(prepared, recipe)
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, mix.p if prob is None else prob)
        self.mix = mix
        self.label_key = label_key
        self.name_key = name_key
        self.summary_key = summary_key
        self._seed = 0

    def randomize(self, data=None) -> None:
        """Draw whether to apply and this sample's seed (both, always, from ``self.R``)."""
        super().randomize(None)
        self._seed = int(self.R.randint(0, 2**63 - 1, dtype=np.int64))

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        self.randomize()
        summary = {"applied": False, "added": 0, "removed": 0, "target_mm3": 0.0,
                   "achieved_mm3": 0.0}
        if self._do_transform:
            summary = self._apply(d)
        if self.summary_key is not None:
            d[self.summary_key] = summary
        return d

    def _apply(self, d: dict) -> dict:
        keys = list(self.key_iterator(d))
        label = d[self.label_key]
        meta = getattr(label, "meta", None) or d.get(f"{self.label_key}_meta_dict") or {}
        affine = label.affine if isinstance(label, MetaTensor) else meta.get("affine")
        if affine is None:
            raise ValueError(f"RandLesionMixd: {self.label_key!r} has no affine (load it with "
                             "LoadImaged so it is a MetaTensor)")
        space = str(meta.get("space", "RAS"))
        lab = _array(label)
        ndim = self.mix.ndim
        flat = lab.ndim == 3  # (1, H, W): a 2D image
        if flat:
            lab = lab[..., None]
        parts = []
        for k in keys:
            arr = _array(d[k])
            arr = arr[..., None] if flat else arr
            if arr.shape[1:] != lab.shape[1:]:
                raise ValueError(f"RandLesionMixd: {k!r} of shape {tuple(arr.shape)} is not on "
                                 f"the grid of {self.label_key!r} {tuple(lab.shape)}")
            parts.append(arr)
        sample = Sample(to_engine(np.concatenate(parts, axis=0), ndim), to_engine(lab, ndim)[0],
                        geometry_from_affine(np.asarray(affine, np.float64), space, ndim),
                        self._name(d, meta))
        out = self.mix.apply(sample, self._seed)
        engine_channels, engine_labels = out.whole(sample)
        channels = from_engine(engine_channels, ndim)
        labels = from_engine(engine_labels[None], ndim)
        start = 0
        for k, arr in zip(keys, parts):
            n = arr.shape[0]
            part = channels[start:start + n]
            start += n
            d[k] = _like(d[k], part[..., 0] if flat else part)
        d[self.label_key] = _like(label, labels[..., 0] if flat else labels)
        prov = out.provenance
        return {"applied": True, "added": out.added, "removed": out.removed,
                "target_mm3": 0.0 if prov is None else float(prov.target_load_mm3),
                "achieved_mm3": 0.0 if prov is None else float(prov.achieved_load_mm3)}

    def _name(self, d: dict, meta: dict) -> str | None:
        if self.name_key is not None and isinstance(d.get(self.name_key), str):
            return d[self.name_key]
        path = meta.get("filename_or_obj")
        if isinstance(path, (str, Path)) and str(path):
            return image_stem(path)
        return None


def _array(x) -> np.ndarray:
    """The voxels of a tensor or array as numpy (no copy for CPU tensors)."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy() if not isinstance(x, MetaTensor) else x.as_tensor().numpy()
    return np.asarray(x)


def _like(old, values: np.ndarray):
    """``values`` in ``old``'s type, dtype and metadata (a MetaTensor keeps its meta);
    integer images are rounded and clipped to their type."""
    is_tensor = isinstance(old, torch.Tensor)
    dtype = torch.empty(0, dtype=old.dtype).numpy().dtype if is_tensor else np.asarray(old).dtype
    values = cast_to(values, dtype.name) if dtype.kind in "iu" else values.astype(dtype)
    values = np.ascontiguousarray(values)
    if not is_tensor:
        return values
    new = torch.from_numpy(values)
    if isinstance(old, MetaTensor):
        return MetaTensor(new, meta=old.meta, applied_operations=old.applied_operations)
    return new
