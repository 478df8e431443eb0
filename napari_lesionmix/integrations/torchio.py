"""LesionMix as a TorchIO transform (``pip install 'napari-lesionmix[torchio]'``).

:class:`RandomLesionMix` is TorchIO's usual pair: a random transform that draws one seed
per subject from torch's generator (so ``torch.manual_seed`` and TorchIO's worker seeding
make runs reproducible) and hands it to the deterministic :class:`LesionMix`, which runs
the engine and records itself in the subject's history with its seed and the provenance
of what it did (lesions added and removed, every parameter). Rebuilding a subject's history
(``subject.get_composed_history()``) replays it exactly on the original subject.
LesionMix adds and removes lesions: it has no inverse, and TorchIO says so
(``get_inverse_transform`` skips it with a warning, as for every non-invertible transform).

Images keep their affine and their intensity units: lesions are written in the subject's
own intensities, whatever was done to the subject before.

Examples
--------
>>> import torchio as tio                                                       # doctest: +SKIP
>>> from napari_lesionmix.integrations.torchio import RandomLesionMix           # doctest: +SKIP
>>> transform = tio.Compose([RandomLesionMix("prepared/"), tio.RandomFlip()])   # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torchio as tio
from torchio.transforms.augmentation import RandomTransform

from ..core.image_io import cast_to
from ..core.io_utils import image_stem
from ..core.recipe import Recipe
from .affine import from_engine, geometry_from_affine, to_engine
from .online import OnlineLesionMix, Sample
from .prepared import PreparedData

__all__ = ["LesionMix", "RandomLesionMix"]

#: subject keys that may hold the case's name (else the label file's name is used)
NAME_KEYS = ("name", "case", "subject_id", "id")
_MEMORY: dict = {}   # "memory:<id>" -> OnlineLesionMix built from objects in this process
_OPENED: dict = {}   # (folder, recipe json) -> OnlineLesionMix, once per process


def _source(mix: OnlineLesionMix) -> str:
    """What the history records for ``mix``: its folder, or a key valid in this process
    (and in data-loader workers forked from it) for a bank held in memory."""
    if mix.prepared.folder is not None:
        return str(mix.prepared.folder)
    key = f"memory:{id(mix):x}"
    _MEMORY[key] = mix
    return key


def _resolve(source: str | None, recipe: dict | None) -> OnlineLesionMix:
    if source is None:
        raise ValueError("LesionMix needs the prepared folder it was made with (prepared=...)")
    if source.startswith("memory:"):
        if source not in _MEMORY:
            raise ValueError(f"LesionMix was made from a bank and map held in memory ({source}) by "
                             "another process; replay it with a prepared folder "
                             "(lesionmix prepare) or in the process that made it")
        return _MEMORY[source]
    key = (source, json.dumps(recipe, sort_keys=True) if recipe else "")
    if key not in _OPENED:
        _OPENED[key] = OnlineLesionMix(PreparedData.open(source),
                                       Recipe.from_dict(recipe) if recipe else None)
    return _OPENED[key]


class RandomLesionMix(RandomTransform):
    """Add and remove lesions with LesionMix, one seed per subject.

    Parameters
    ----------
    prepared : path-like, PreparedData or OnlineLesionMix
        A folder written by ``lesionmix prepare`` (each worker maps its bank), or objects
        in memory (:meth:`PreparedData.from_objects`).
    recipe : Recipe, optional
        Default: the prepared folder's.
    images : sequence of str, optional
        The scalar images that are the bank's channels, in its order; default every
        scalar image of the subject (after ``include`` / ``exclude``), in subject order.
    label : str, optional
        The label map; default the subject's only :class:`torchio.LabelMap`.
    p : float, optional
        Probability of applying; default the recipe's ``online.p``.
    **kwargs
        TorchIO's (``include``, ``exclude``, ``copy``, ...).

    Notes
    -----
    The case's name (for what the prepared folder knows of it: its alignment to the map)
    is the subject's ``name``, ``case``, ``subject_id`` or ``id`` entry, else the label
    file's name without extension. A subject the folder does not know reads the map
    through physical coordinates.
    """

    def __init__(self, prepared, recipe: Recipe | None = None, images=None, label=None,
                 p: float | None = None, **kwargs):
        mix = prepared if isinstance(prepared, OnlineLesionMix) else OnlineLesionMix(prepared, recipe)
        super().__init__(p=mix.p if p is None else p, **kwargs)
        self.mix = mix
        self.prepared = _source(mix)
        self.recipe = None if recipe is None else recipe.to_dict()
        self.images = None if images is None else list(images)
        self.label = label
        self.args_names = ["prepared", "recipe", "images", "label"]

    def apply_transform(self, subject: tio.Subject) -> tio.Subject:
        seed = int(torch.randint(0, 2**63 - 1, (1,)).item())
        base = self._get_base_args()
        base["copy"] = False  # the subject was copied once already, by this transform
        transform = LesionMix(seed, self.prepared, recipe=self.recipe, images=self.images,
                              label=self.label, **base)
        transform._mix = self.mix
        return transform(subject)


class LesionMix(tio.Transform):
    """LesionMix with a given seed (what :class:`RandomLesionMix` records in the history).

    Parameters
    ----------
    seed : int
        The subject's seed.
    prepared : str
        The prepared folder (or the in-memory key :class:`RandomLesionMix` made).
    recipe : dict, optional
        A recipe replacing the folder's.
    images, label : see :class:`RandomLesionMix`
    provenance : dict, optional
        What an earlier run with this seed did; given, its accepted operations are
        applied again (no search, the same voxels).
    """

    def __init__(self, seed: int, prepared: str, recipe: dict | None = None, images=None,
                 label=None, provenance: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = int(seed)
        self.prepared = None if prepared is None else str(prepared)
        self.recipe = recipe
        self.images = None if images is None else list(images)
        self.label = label
        self.provenance = provenance
        self.args_names = ["seed", "prepared", "recipe", "images", "label", "provenance"]
        self._mix: OnlineLesionMix | None = None

    def apply_transform(self, subject: tio.Subject) -> tio.Subject:
        mix = self._mix or _resolve(self.prepared, self.recipe)
        names, label_name = self._names(subject)
        label = subject[label_name]
        scalars = [subject[n] for n in names]
        ndim = mix.ndim
        space = "RAS"
        affine = np.asarray(label.affine, np.float64)
        for n, img in zip(names, scalars):
            if not np.allclose(img.affine, affine, rtol=0, atol=1e-6) or img.shape[1:] != label.shape[1:]:
                raise ValueError(f"LesionMix: image {n!r} is not on the grid of label map "
                                 f"{label_name!r} (shape or affine differ); resample first")
        data = np.concatenate([img.data.numpy() for img in scalars], axis=0)
        sample = Sample(to_engine(data, ndim), to_engine(label.data.numpy(), ndim)[0],
                        geometry_from_affine(affine, space, ndim), self._case_name(subject, label))
        if self.provenance is None:
            out = mix.apply(sample, self.seed)
            self.provenance = None if out.provenance is None else out.provenance.to_dict()
        else:
            out = mix.replay(sample, self.provenance)
        engine_channels, engine_labels = out.whole(sample)
        channels = from_engine(engine_channels, ndim)
        start = 0
        for img in scalars:
            n = img.data.shape[0]
            part = channels[start:start + n]
            start += n
            dtype = img.data.numpy().dtype
            # part is a transposed view: astype in C order is its one copy
            values = (cast_to(part, dtype.name) if dtype.kind in "iu"
                      else part.astype(dtype, order="C"))
            img.set_data(torch.from_numpy(np.ascontiguousarray(values)))
        labels = from_engine(engine_labels[None], ndim)
        label.set_data(torch.from_numpy(np.ascontiguousarray(labels)))
        return subject

    def _names(self, subject: tio.Subject) -> tuple[list, str]:
        if self.label is not None:
            label = self.label
        else:
            maps = [k for k, v in subject.get_images_dict(intensity_only=False).items()
                    if isinstance(v, tio.LabelMap)]
            if len(maps) != 1:
                raise ValueError(f"LesionMix: the subject has {len(maps)} label maps {maps}; "
                                 "name the one to use with label=")
            label = maps[0]
        if self.images is not None:
            return list(self.images), label
        names = list(subject.get_images_dict(intensity_only=True, include=self.include,
                                              exclude=self.exclude))
        if not names:
            raise ValueError("LesionMix: the subject has no scalar image")
        return names, label

    @staticmethod
    def _case_name(subject: tio.Subject, label) -> str | None:
        for key in NAME_KEYS:
            value = subject.get(key)
            if isinstance(value, str) and value:
                return value
        path = getattr(label, "path", None)
        if isinstance(path, (str, Path)):
            return image_stem(path)
        return None
