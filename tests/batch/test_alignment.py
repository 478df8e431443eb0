"""The batch path builds the likelihood map through an alignment of each case and tells
the user about cases that were not in one space."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from napari_lesionmix.batch.dataset import open_dataset
from napari_lesionmix.batch.memory import MemorySource
from napari_lesionmix.batch.options import GenerateOptions
from napari_lesionmix.batch.prepare import prepare
from napari_lesionmix.batch.runner import generate
from napari_lesionmix.batch.tasks import shared
from napari_lesionmix.batch.verify import verify_output
from napari_lesionmix.core.case import Case
from napari_lesionmix.core.geometry import Geometry
from napari_lesionmix.core.recipe import Recipe
from tests.batch.helpers import make_nnunet


def _turn_last_case(root):
    """Rewrite the last case under a header turned by 30 degrees (an oblique head)."""
    images = sorted((root / "imagesTr").glob("sub03_*.nii.gz"))
    case = Case.read(images, root / "labelsTr" / "sub03.nii.gz", name="sub03")
    a = np.radians(30.0)
    rot = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    g = case.geometry
    centre = g.index_to_physical((np.array(case.labels.shape) - 1) / 2.0)
    origin = centre + rot @ (np.asarray(g.origin) - centre)
    case.geometry = Geometry(g.spacing, tuple(origin), tuple((rot @ g.direction_matrix).ravel()))
    case.image_dtypes = ["int16"] * case.n_channels
    case.write(images, root / "labelsTr" / "sub03.nii.gz", overwrite=True)


def test_a_case_in_another_space_is_registered_and_the_user_is_told(tmp_path):
    root = make_nnunet(tmp_path / "Dataset003_Turned", shape=(20, 32, 32), zero_load=False)
    _turn_last_case(root)
    prep = prepare(open_dataset(root), Recipe())
    assert any(line.startswith("sub03") for line in prep.notices)
    assert prep.lmap.alignment["sub03"].kind in ("registered", "own")
    said = []
    out = tmp_path / "out"
    summary = generate(GenerateOptions(input=root, output=out, n=4, progress=False),
                       say=said.append)
    assert summary.exit_code == 0
    assert any(m.startswith("likelihood map: sub03") for m in said)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["likelihood_notices"] == prep.notices
    # the workers read the alignment found when the map was built
    assert (out / ".lesionmix" / "likelihood.align.npz").exists()
    none = prepare(open_dataset(root), Recipe(likelihood={"align": "none"}))
    assert none.notices == [] and none.lmap.alignment is None


def test_the_alignment_reaches_the_workers_written_like_the_map(tmp_path, monkeypatch):
    """The alignment goes to OUTPUT/.lesionmix/ the way the bank and the map do (a temporary
    in .lesionmix/tmp, then renamed), and the tasks read it, for a run over files and for
    one over cases in memory with the caller's map (the plugin's Export)."""
    import napari_lesionmix.core.io_utils as io_utils

    root = make_nnunet(tmp_path / "Dataset003_Turned", shape=(20, 32, 32), zero_load=False)
    _turn_last_case(root)
    prep = prepare(open_dataset(root), Recipe())
    assert prep.lmap.alignment["sub03"].kind != "physical"
    turned = Case.read(sorted((root / "imagesTr").glob("sub03_*.nii.gz")),
                       root / "labelsTr" / "sub03.nii.gz", name="sub03")
    memory = MemorySource.from_case(turned, bank=prep.bank, lmap=prep.lmap,
                                    reference_loads=prep.reference_loads())
    folders = []
    real = io_utils.tempfile.mkstemp

    def spy(*args, **kw):
        folders.append(Path(kw["dir"]))
        return real(*args, **kw)

    monkeypatch.setattr(io_utils.tempfile, "mkstemp", spy)
    for out, source in ((tmp_path / "disk", root), (tmp_path / "memory", memory)):
        folders.clear()
        said = []
        summary = generate(GenerateOptions(source, out, 4, progress=False, workers=1),
                           say=said.append)
        assert summary.exit_code == 0
        assert folders and set(folders) == {out / ".lesionmix" / "tmp"}, set(folders)
        assert list((out / ".lesionmix" / "tmp").iterdir()) == []
        assert (out / ".lesionmix" / "likelihood.align.npz").is_file()
        got = shared(out / ".lesionmix").lmap.alignment["sub03"]  # what the tasks use
        want = prep.lmap.alignment["sub03"]
        assert got.kind == want.kind and got.fixed == want.fixed
        # the caller's map as it was given, or the case registered again: the same
        # transform either way (registration results are rounded to 1e-9)
        assert got.params == want.params
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["likelihood_notices"] == prep.notices
        assert any(m.startswith("likelihood map: sub03") for m in said)
        assert verify_output(out)[1] == []
