"""Radiological slices from the direction matrix, and the QC pictures."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from napari_lesionmix.cli import main
from napari_lesionmix.core.case import Case
from napari_lesionmix.core.geometry import Geometry
from napari_lesionmix.review.changes import lesion_changes
from napari_lesionmix.review.index import CaseRow, LoadedCase
from napari_lesionmix.review.orient import Orienter
from napari_lesionmix.review.qc import case_sheet

# a head-like volume on an LPS grid (identity direction): index x grows to the patient's
# left, y to posterior, z to superior; one bright marker left-anterior-superior
SHAPE = (24, 30, 28)  # z, y, x


def _lps_image() -> sitk.Image:
    a = np.zeros(SHAPE, np.float32)
    a[4:20, 5:25, 4:24] = 100.0
    a[15:18, 7:10, 18:21] = 300.0  # superior, anterior, patient's left
    img = sitk.GetImageFromArray(a)
    img.SetSpacing((1.0, 1.2, 2.0))
    img.SetOrigin((-14.0, -18.0, -24.0))
    return img


@pytest.mark.parametrize("code", ["LPS", "RAS", "LAS", "RPI", "SLP", "AIR"])
def test_every_stored_orientation_gives_the_same_picture(code):
    ref = _lps_image()
    img = sitk.DICOMOrient(ref, code)
    o, o_ref = Orienter(Geometry.from_sitk(img)), Orienter(Geometry.from_sitk(ref))
    canon = o.array(sitk.GetArrayFromImage(img))
    np.testing.assert_array_equal(canon, o_ref.array(sitk.GetArrayFromImage(ref)))
    assert o.spacing == (2.0, 1.2, 1.0) and not o.oblique
    marker = tuple(np.argwhere(canon == 300).mean(axis=0))
    axial = o.plane(canon, "axial", marker)
    rows, cols = np.nonzero(axial == 300)
    assert rows.mean() < axial.shape[0] / 2  # anterior up
    assert cols.mean() > axial.shape[1] / 2  # patient's left on the screen's right
    coronal = o.plane(canon, "coronal", marker)
    rows, cols = np.nonzero(coronal == 300)
    assert rows.mean() < coronal.shape[0] / 2 and cols.mean() > coronal.shape[1] / 2
    sagittal = o.plane(canon, "sagittal", marker)
    rows, cols = np.nonzero(sagittal == 300)
    assert rows.mean() < sagittal.shape[0] / 2  # superior up
    assert cols.mean() < sagittal.shape[1] / 2  # anterior on the left
    # a point maps like the array
    idx = np.argwhere(sitk.GetArrayFromImage(img) == 300).mean(axis=0)
    np.testing.assert_allclose(o.point(idx, img.GetSize()[::-1]), marker)


def test_oblique_direction_is_flagged():
    c, s = np.cos(0.3), np.sin(0.3)
    g = Geometry((1, 1, 1), (0, 0, 0), (c, -s, 0, s, c, 0, 0, 0, 1))
    o = Orienter(g)
    assert o.oblique and o.axes == (0, 1, 2) and o.flips == (False, False, False)


def _loaded(flip: bool) -> LoadedCase:
    """The same anatomy as a LoadedCase, stored with identity or flipped (RAS) axes."""
    ref = _lps_image()
    src = sitk.GetArrayFromImage(ref)
    lab_src = np.zeros(SHAPE, np.uint8)
    lab_src[10:13, 12:15, 8:11] = 1  # a lesion that is removed
    res, lab_res = src.copy(), np.zeros(SHAPE, np.uint8)
    res[15:18, 7:10, 18:21] = 40.0
    lab_res[15:18, 7:10, 18:21] = 1  # a lesion that is added
    geom = Geometry.from_sitk(ref)
    if flip:
        ras = sitk.DICOMOrient(ref, "RAS")
        geom = Geometry.from_sitk(ras)
        src, res, lab_src, lab_res = (a[:, ::-1, ::-1].copy() for a in
                                      (src, res, lab_src, lab_res))
    source = Case(src[None], lab_src, geom, name="s")
    result = Case(res[None], lab_res, geom, name="s_lmix0000")
    row = CaseRow("s_lmix0000", "synthesised", [], None, source="s", status="reached")
    return LoadedCase(row, result, source, None, lesion_changes(result, source, None, [1]))


def test_qc_page_of_a_flipped_file_equals_the_standard_one(tmp_path):
    a, b = case_sheet(_loaded(False)), case_sheet(_loaded(True))
    assert a.rgb.shape == b.rgb.shape
    np.testing.assert_array_equal(a.rgb, b.rgb)
    a.save(tmp_path / "a.png")
    assert Image.open(tmp_path / "a.png").size == (a.width, a.height)


def test_lesionmix_qc_writes_pages_and_overview(export_ro, tmp_path, capsys):
    out = tmp_path / "qc"
    assert main(["qc", str(export_ro), "--out", str(out)]) == 0
    assert "wrote 6 case page(s) and 1 overview page(s)" in capsys.readouterr().out
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == sorted([f"{n}.png" for n in ("brain01_lmix0000", "brain02_lmix0001",
                                                "brain03_lmix0002", "brain04_lmix0003",
                                                "brain05_lmix0004", "brain06_lmix0005")]
                          + ["overview.png"])
    page = np.asarray(Image.open(out / "brain02_lmix0001.png").convert("RGB"))
    # one row per added lesion, with amber outlines on the source panels
    assert page.shape[0] > 14 * 150
    assert (np.abs(page.astype(int) - [255, 176, 0]).sum(axis=2) == 0).sum() > 100
    # never overwritten silently
    assert main(["qc", str(export_ro), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["qc", str(export_ro), "--out", str(out), "--overwrite", "--cases",
                 "brain01_lmix0000"]) == 0


def test_overview_pages_and_a_2d_dataset(export_ro, tmp_path, monkeypatch):
    import json

    from napari_lesionmix.review import qc
    from napari_lesionmix.review.index import ReviewDataset
    from tests.conftest import blob_case
    from tests.review.review_helpers import generate

    monkeypatch.setattr(qc, "TILES_PER_PAGE", 4)
    res = qc.write_qc(ReviewDataset.open(export_ro), tmp_path / "qc")
    assert [p.name for p in res.overview] == ["overview.png", "overview_002.png"]
    # 2D cases: one axial panel per side
    inp = tmp_path / "in2d"
    for d in ("imagesTr", "labelsTr"):
        (inp / d).mkdir(parents=True)
    for i in range(3):
        c = blob_case(shape=(64, 56), n_lesions=3, seed=i, name=f"s{i}", lesion_radius=(2, 4))
        c.write([inp / "imagesTr" / f"s{i}_0000.nii.gz"], inp / "labelsTr" / f"s{i}.nii.gz")
    (inp / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "x"}, "labels": {"background": 0, "lesion": 1},
        "numTraining": 3, "file_ending": ".nii.gz"}))
    out = generate(tmp_path / "out2d", source=inp, n=6, recipe=None)
    res = qc.write_qc(ReviewDataset.open(out))
    assert res.pages and not res.problems
    assert Image.open(res.pages[0]).size[0] == qc.MIN_WIDTH
