"""Cases: image channels, a label map and their physical geometry; reading and writing.

A :class:`Case` holds co-registered image channels (float32), a label map and the
:class:`Geometry` they share, read from and written to files through
:func:`read_image` and :func:`write_image`.

The building blocks live in their own modules; import each name from its own:

- :mod:`~napari_lesionmix.core.geometry`: :class:`Geometry` (array vs SimpleITK order);
- :mod:`~napari_lesionmix.core.image_io`: :func:`read_image`, :func:`write_image`,
  :func:`label_dtype`, file names and suffixes (format precision notes, DICOM, detached
  headers);
- :mod:`~napari_lesionmix.core.nifti_check`: truncated-file and NaN checks for NIfTI;
- :mod:`~napari_lesionmix.core.validate`: checks on image and label values;
- :mod:`~napari_lesionmix.core.errors`: :class:`CaseError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CaseError
from .geometry import Geometry
from .image_io import cast_to, label_dtype, parallel_map, read_image, write_image
from .io_utils import image_stem, split_channel
from .validate import same_grid, unique_values, validate_image, validate_labels

__all__ = ["Case"]


# --------------------------------------------------------------------------------------
# Case
# --------------------------------------------------------------------------------------


@dataclass
class Case:
    """One subject: image channels, a label map and their geometry.

    Parameters
    ----------
    channels : ndarray, float32, shape (C, *spatial)
        Co-registered image channels in array order.
    labels : ndarray, integer, shape spatial
        Label map (0 = background); unsigned integer after :meth:`read`.
    geometry : Geometry
        Physical geometry shared by every channel and the labels.
    name : str
        Case name (used in messages and output names).
    channel_names : list of str
        Default ``["0", "1", ...]``.
    placement : ndarray of bool, optional
        Where lesions may be placed (non-zero in the placement file).
    image_paths : list of str
        Files the channels came from (for messages); empty for in-memory cases.
    label_path : str, optional
        File the labels came from.
    image_dtypes : list of str
        Source dtype of each channel; :meth:`write` writes channels back in it.
    exact : list, optional
        Per channel, the source values when float32 cannot hold them (float64, large
        int32/int64 images), else None: :meth:`write` writes every voxel the float32
        channel still holds unchanged with its exact source value. Shared, never copied.

    Notes
    -----
    Construct with :meth:`read` or :meth:`from_arrays`, which validate values. The
    plain constructor only checks shapes and fills defaults.
    """

    channels: np.ndarray
    labels: np.ndarray
    geometry: Geometry
    name: str = "case"
    channel_names: list[str] = field(default_factory=list)
    placement: np.ndarray | None = None
    image_paths: list[str] = field(default_factory=list)
    label_path: str | None = None
    image_dtypes: list[str] = field(default_factory=list)
    exact: list | None = None

    def __post_init__(self) -> None:
        self.channels = np.asarray(self.channels)
        if self.channels.dtype != np.float32:
            self.channels = self.channels.astype(np.float32)
        self.labels = np.asarray(self.labels)
        where = f"case {self.name!r}"
        if self.channels.ndim != self.labels.ndim + 1:
            raise CaseError(
                f"{where}: channels must have shape (C, *spatial) with spatial = labels "
                f"shape; got channels {self.channels.shape}, labels {self.labels.shape}"
            )
        if self.channels.shape[1:] != self.labels.shape:
            raise CaseError(
                f"{where}: channels spatial shape {self.channels.shape[1:]} differs from "
                f"labels shape {self.labels.shape}"
            )
        if self.labels.ndim != self.geometry.ndim:
            raise CaseError(
                f"{where}: arrays are {self.labels.ndim}D but geometry is {self.geometry.ndim}D"
            )
        if self.labels.dtype.kind not in "iu":
            raise CaseError(f"{where}: labels must be an integer array, got {self.labels.dtype}")
        if self.placement is not None:
            self.placement = np.asarray(self.placement, dtype=bool)
            if self.placement.shape != self.labels.shape:
                raise CaseError(
                    f"{where}: placement shape {self.placement.shape} differs from labels "
                    f"shape {self.labels.shape}"
                )
        c = self.channels.shape[0]
        if not self.channel_names:
            self.channel_names = [str(i) for i in range(c)]
        if not self.image_dtypes:
            self.image_dtypes = ["float32"] * c
        if len(self.channel_names) != c or len(self.image_dtypes) != c:
            raise CaseError(
                f"{where}: {c} channel(s) but {len(self.channel_names)} channel name(s) and "
                f"{len(self.image_dtypes)} image dtype(s)"
            )
        self.image_paths = [str(p) for p in self.image_paths]
        if self.label_path is not None:
            self.label_path = str(self.label_path)

    # -- constructors ------------------------------------------------------------------
    @classmethod
    def read(
        cls,
        image_paths: str | Path | list,
        label_path: str | Path | None,
        name: str | None = None,
        placement_path: str | Path | None = None,
        allowed_labels: set | None = None,
        expect_ndim: int | None = None,
        *,
        series_id: str | None = None,
        channel_names: list[str] | None = None,
    ) -> Case:
        """Read and validate a case from files.

        Parameters
        ----------
        image_paths : path-like or list of path-like
            One file (or DICOM folder) per channel, all on the same grid.
        label_path : path-like or None
            The label map; None gives an all-zero label map.
        name : str, optional
            Default: the label file's name without extension, else the first image's
            without extension and without an nnU-Net channel suffix (``_0000``).
        placement_path : path-like, optional
            A placement mask on the same grid (non-zero = lesions allowed).
        allowed_labels : set of int, optional
            If given, any other label value is an error.
        expect_ndim : int, optional
            If given (2 or 3), an image of another dimension is an error.
        series_id : str, optional
            DICOM SeriesInstanceUID for folders holding several series.
        channel_names : list of str, optional
            Default ``["0", "1", ...]``.

        Returns
        -------
        Case

        Raises
        ------
        CaseError
            Missing, unreadable or truncated files; shape or geometry mismatch between
            channels, labels or placement; NaN/Inf in an image; labels that are not
            whole, negative or not allowed; a 4D or vector image; an unexpected
            dimension. The message names the file(s).
        """
        if isinstance(image_paths, (str, Path)):
            image_paths = [image_paths]
        image_paths = [Path(p) for p in image_paths]
        if not image_paths:
            raise CaseError("Case.read: no image files given")

        def load(p: Path) -> tuple[np.ndarray, Geometry, str]:
            arr, geom, dt = read_image(p, series_id=series_id)
            if expect_ndim is not None and arr.ndim != expect_ndim:
                raise CaseError(
                    f"{p}: expected a {expect_ndim}D image, got {arr.ndim}D with array shape "
                    f"{arr.shape}"
                )
            return arr, geom, dt

        # every file in its own thread (zlib-ng and numpy release the GIL), checked each
        label_path = None if label_path is None else Path(label_path)
        placement_path = None if placement_path is None else Path(placement_path)
        jobs = [("image", p) for p in image_paths]
        jobs += [("labels", label_path)] if label_path is not None else []
        jobs += [("placement", placement_path)] if placement_path is not None else []

        def load_checked(job):
            kind, p = job
            arr, geom, dt = load(p)
            source = None
            if kind == "image":
                source = _inexact(arr)  # values float32 cannot hold: kept for write()
                arr = validate_image(arr, str(p))
            elif kind == "labels":
                arr = validate_labels(arr, str(p), allowed_labels)
            elif arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
                raise CaseError(f"{p}: placement mask holds NaN or Inf values")
            return arr, geom, dt, source

        loaded = parallel_map(load_checked, jobs)
        exact = [x[3] for x in loaded[: len(image_paths)]]
        loaded = [x[:3] for x in loaded]
        arr0, geom0, _ = loaded[0]
        for (_, p), (arr, geom, _) in zip(jobs[1:], loaded[1:]):
            same_grid(arr0.shape, geom0, str(image_paths[0]), arr.shape, geom, str(p))
        n = len(image_paths)
        dtypes = [dt for _, _, dt in loaded[:n]]
        stacked = np.stack([a for a, _, _ in loaded[:n]]) if n > 1 else loaded[0][0][None]
        labels = (loaded[n][0] if label_path is not None
                  else np.zeros(arr0.shape, dtype=np.uint8))
        placement = loaded[-1][0] != 0 if placement_path is not None else None
        del loaded

        if name is None:
            if label_path is not None:
                name = image_stem(label_path)
            else:
                stem = image_stem(image_paths[0])
                name = (split_channel(stem) or (stem, 0))[0]
        return cls(
            channels=stacked,
            labels=labels,
            geometry=geom0,
            name=name,
            channel_names=list(channel_names) if channel_names else [],
            placement=placement,
            image_paths=[str(p) for p in image_paths],
            label_path=None if label_path is None else str(label_path),
            image_dtypes=dtypes,
            exact=exact if any(e is not None for e in exact) else None,
        )

    @classmethod
    def from_arrays(
        cls,
        channels: Any,
        labels: Any = None,
        geometry: Geometry | None = None,
        name: str = "case",
        placement: Any = None,
        *,
        channel_names: list[str] | None = None,
        allowed_labels: set | None = None,
        copy: bool = True,
    ) -> Case:
        """Build and validate a case from arrays.

        Parameters
        ----------
        channels : array_like
            ``(C, *spatial)``, or ``(*spatial)`` for a single channel.
        labels : array_like, optional
            Integer (or whole-valued float) label map of shape ``spatial``; default zeros.
        geometry : Geometry, optional
            Default: identity direction, spacing 1, origin 0.
        name : str
            Used in messages.
        placement : array_like, optional
            Placement mask (non-zero = allowed).
        channel_names : list of str, optional
        allowed_labels : set of int, optional
        copy : bool
            With False, arrays that are already valid (float32 channels, labels of the
            smallest unsigned type) are used as they are, not copied: edits to the case
            then edit the caller's arrays (what a viewer showing them wants).

        Returns
        -------
        Case
            ``image_dtypes`` records the dtype of ``channels`` as given.

        Raises
        ------
        CaseError
            Shapes disagree, NaN/Inf in the channels, bad label values.

        Examples
        --------
        >>> case = Case.from_arrays(np.ones((4, 5), np.float32), np.zeros((4, 5), int))
        >>> case.channels.shape, case.ndim
        ((1, 4, 5), 2)
        """
        where = f"case {name!r}"
        ch = np.asarray(channels)
        if labels is None:
            spatial_ndim = geometry.ndim if geometry is not None else ch.ndim
            lab = None
        else:
            lab = np.asarray(labels)
            spatial_ndim = lab.ndim
        if ch.ndim == spatial_ndim:
            ch = ch[None]
        elif ch.ndim != spatial_ndim + 1:
            raise CaseError(
                f"{where}: channels of shape {ch.shape} do not fit {spatial_ndim}D labels; "
                "expected (C, *spatial) or (*spatial)"
            )
        if lab is None:
            lab = np.zeros(ch.shape[1:], dtype=np.uint8)
        if spatial_ndim not in (2, 3):
            raise CaseError(f"{where}: only 2D and 3D cases are supported, got {spatial_ndim}D")
        if ch.shape[1:] != lab.shape:
            raise CaseError(
                f"{where}: channels spatial shape {ch.shape[1:]} differs from labels shape "
                f"{lab.shape}"
            )
        if geometry is None:
            geometry = Geometry.identity(spatial_ndim)
        elif geometry.ndim != spatial_ndim:
            raise CaseError(f"{where}: arrays are {spatial_ndim}D but geometry is {geometry.ndim}D")
        src_dtype = ch.dtype.name if ch.dtype.kind in "iuf" else "float32"
        exact = [_inexact(ch[i]) for i in range(ch.shape[0])]
        chf = validate_image(ch, where)
        if chf is ch and copy:
            chf = ch.copy()
        lab_out = validate_labels(lab, f"{where} labels", allowed_labels)
        if lab_out is lab and copy:
            lab_out = lab.copy()
        pl = None
        if placement is not None:
            pl = np.asarray(placement) != 0
        return cls(
            channels=chf,
            labels=lab_out,
            geometry=geometry,
            name=name,
            channel_names=list(channel_names) if channel_names else [],
            placement=pl,
            image_dtypes=[src_dtype] * chf.shape[0],
            exact=exact if any(e is not None for e in exact) else None,
        )

    # -- writing -----------------------------------------------------------------------
    def write(
        self,
        image_paths: list | str | Path | None,
        label_path: str | Path | None,
        overwrite: bool = False,
        *,
        compression_level: int | None = None,
        tmp_dir: str | Path | None = None,
    ) -> None:
        """Write channels (in their source dtypes) and labels, each file atomically.

        Parameters
        ----------
        image_paths : list of path-like, or None
            One path per channel; None writes no images.
        label_path : path-like or None
            Labels are written as the smallest unsigned type holding them (uint8,
            uint16, uint32); None writes no labels.
        overwrite : bool
            If False, every target is checked first and nothing is written if any exists.
        compression_level : int, optional
            zlib level 1..9 for compressed formats (``.nii.gz`` is always compressed).
        tmp_dir : path-like, optional
            Folder for the temporary files (same file system), see :func:`write_image`.

        Raises
        ------
        FileExistsError
            A target exists and ``overwrite`` is False (nothing is written).
        CaseError
            Wrong number of paths, or SimpleITK cannot write.

        Notes
        -----
        Integer source dtypes are restored by rounding and clipping to the type's range.
        """
        if image_paths is None:
            image_paths = []
        elif isinstance(image_paths, (str, Path)):
            image_paths = [image_paths]
        image_paths = [Path(p) for p in image_paths]
        if image_paths and len(image_paths) != self.n_channels:
            raise CaseError(
                f"case {self.name!r}: {self.n_channels} channel(s) but {len(image_paths)} "
                "image path(s) given"
            )
        targets = list(image_paths) + ([Path(label_path)] if label_path is not None else [])
        if len({str(t.resolve()) for t in targets}) != len(targets):
            raise CaseError(f"case {self.name!r}: the same output path is given twice")
        if not overwrite:
            for t in targets:
                if t.exists():
                    raise FileExistsError(f"{t}: already exists; refusing to overwrite it")
        if label_path is not None and self.labels.size and self.labels.min() < 0:
            raise CaseError(f"case {self.name!r}: negative label values cannot be written")

        def write_one(i: int) -> None:  # every file in its own thread (zlib-ng, numpy)
            if i < len(image_paths):
                arr = cast_to(self.channels[i], self.image_dtypes[i])
                source = self.exact[i] if self.exact else None
                if source is not None and source.shape == arr.shape:
                    kept = self.channels[i] == source.astype(np.float32)
                    arr = np.where(kept, source, arr).astype(arr.dtype, copy=False)
                path = image_paths[i]
            else:
                lab = self.labels
                arr = lab.astype(label_dtype(int(lab.max()) if lab.size else 0), copy=False)
                path = label_path
            write_image(arr, self.geometry, path, overwrite,
                        compression_level=compression_level, tmp_dir=tmp_dir)

        parallel_map(write_one, range(len(targets)))

    # -- helpers -----------------------------------------------------------------------
    def copy(self) -> Case:
        """Deep copy (arrays and lists copied; geometry is immutable and shared)."""
        return Case(
            channels=self.channels.copy(),
            labels=self.labels.copy(),
            geometry=self.geometry,
            name=self.name,
            channel_names=list(self.channel_names),
            placement=None if self.placement is None else self.placement.copy(),
            image_paths=list(self.image_paths),
            label_path=self.label_path,
            image_dtypes=list(self.image_dtypes),
            exact=None if self.exact is None else list(self.exact),
        )

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """Shape of the voxel grid in array order."""
        return tuple(self.labels.shape)

    @property
    def ndim(self) -> int:
        """Number of spatial dimensions (2 or 3)."""
        return self.labels.ndim

    @property
    def n_channels(self) -> int:
        """Number of image channels."""
        return int(self.channels.shape[0])

    def foreground(self) -> np.ndarray:
        """Boolean foreground: the placement mask if given, else any channel != 0."""
        if self.placement is not None:
            return self.placement.copy()
        return np.any(self.channels != 0, axis=0)

    def intensity_stats(self, region: np.ndarray | None = None) -> np.ndarray:
        """Per-channel mean and std over a region, float64.

        Parameters
        ----------
        region : ndarray of bool, optional
            Default :meth:`foreground`. An empty region gives stats over the whole image.

        Returns
        -------
        ndarray, shape (C, 2)
            ``[:, 0]`` mean, ``[:, 1]`` std, the std floored at ``1e-6·|mean| + 1e-6`` so
            that z-scores never divide by zero.
        """
        if region is None:
            region = self.foreground()
        region = np.asarray(region, dtype=bool)
        if region.shape != self.spatial_shape:
            raise ValueError(
                f"intensity_stats: region shape {region.shape} differs from {self.spatial_shape}"
            )
        out = np.empty((self.n_channels, 2), dtype=np.float64)
        use_all = not region.any()
        for c in range(self.n_channels):
            vals = self.channels[c].ravel() if use_all else self.channels[c][region]
            mean = float(np.mean(vals, dtype=np.float64))
            std = std64(vals)
            out[c] = (mean, max(std, 1e-6 * abs(mean) + 1e-6))
        return out

    def label_values(self) -> set[int]:
        """The set of label values present (including 0 if present)."""
        return unique_values(self.labels)


_SLAB = 1 << 20  # values per step of std64


def std64(values: np.ndarray) -> float:
    """``float(np.std(values, dtype=np.float64))`` of a 1-D array, bit for bit, without its
    float64 array of squared deviations (8 bytes a value).

    NumPy sums the squared deviations of a contiguous array pairwise, halving the range
    (at a multiple of 8) down to small blocks; the nodes of that tree of at most
    2**20 values are computed here one at a time, with the same operations in the same
    order, and added up the tree as NumPy adds them.

    Examples
    --------
    >>> v = np.linspace(0, 1, 3_000_001, dtype=np.float32)
    >>> std64(v) == float(np.std(v, dtype=np.float64))
    True
    """
    if values.ndim != 1 or not values.flags.c_contiguous or values.size == 0:
        return float(np.std(values, dtype=np.float64))
    n = values.size
    mean = np.add.reduce(values, axis=None, dtype=np.float64, keepdims=True)
    np.true_divide(mean, n, out=mean, casting="unsafe")
    return float(np.sqrt(np.float64(_squares(values, mean, 0, n) / n)))


def _squares(values: np.ndarray, mean: np.ndarray, lo: int, hi: int):
    """NumPy's pairwise sum of ``(values[lo:hi] - mean) ** 2`` in float64 (see std64).
    A plain function: a nested recursive one would hold ``values`` in a reference cycle
    after std64 returns, until the garbage collector runs."""
    if hi - lo <= _SLAB:
        x = np.subtract(values[lo:hi], mean)
        np.square(x, out=x)
        return np.add.reduce(x, axis=None, dtype=np.float64)
    half = (hi - lo) // 2
    half -= half % 8
    return _squares(values, mean, lo, lo + half) + _squares(values, mean, lo + half, hi)


def _inexact(arr: np.ndarray) -> np.ndarray | None:
    """``arr`` itself when float32 does not hold each of its values exactly (float64,
    int32/int64 beyond 2**24, ...), else None."""
    if arr.dtype.itemsize <= 2 or arr.dtype == np.float32 or arr.dtype.kind not in "iuf":
        return None
    with np.errstate(invalid="ignore", over="ignore"):
        back = arr.astype(np.float32).astype(arr.dtype)
    return None if np.array_equal(back, arr, equal_nan=arr.dtype.kind == "f") else arr
