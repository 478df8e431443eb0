"""nnU-Net v2 trains with nnUNetTrainerLesionMix: plan, preprocess and 2 epochs × 2
iterations on CPU of a tiny brain dataset, the trainer found through the shim that
``lesionmix nnunet install-trainer`` writes; the bank and map come from the fold's training
cases only, and the log says what LesionMix did. The shim refuses foreign files."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_lesionmix.cli import main
from napari_lesionmix.integrations.nnunet.install import (
    MARKER,
    SHIM_NAME,
    InstallError,
    install_trainer,
    uninstall_trainer,
)
from tests.integrations.conftest import tiny_nnunet

ROOT = Path(__file__).resolve().parents[2]
needs_nnunet = pytest.mark.skipif(importlib.util.find_spec("nnunetv2") is None,
                                  reason="nnunetv2 is not installed")

# a shorter schedule, as nnU-Net's own nnUNetTrainer_Xepochs variants do; the final
# validation (sliding-window prediction of the validation cases) is nnU-Net's, skipped here
TINY = '''import torch

from napari_lesionmix.integrations.nnunet.trainer import nnUNetTrainerLesionMix


class nnUNetTrainerLesionMixTiny(nnUNetTrainerLesionMix):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = 2
        self.num_iterations_per_epoch = 2
        self.num_val_iterations_per_epoch = 1

    def perform_actual_validation(self, save_probabilities: bool = False):
        self.print_to_log_file("final validation skipped (test)")
'''


def test_install_and_uninstall_the_trainer_shim(tmp_path, capsys):
    folder = tmp_path / "trainers"
    folder.mkdir()
    path, what = install_trainer(folder)
    assert what == "installed" and path == folder / SHIM_NAME
    assert path.read_text().startswith(MARKER) and "nnUNetTrainerLesionMix" in path.read_text()
    assert install_trainer(folder)[1] == "unchanged"
    assert uninstall_trainer(folder)[1] == "removed" and not path.exists()
    assert uninstall_trainer(folder)[1] == "absent"
    # a file of that name that is not ours is never overwritten nor removed
    path.write_text("class nnUNetTrainerLesionMix: pass\n")
    with pytest.raises(InstallError, match="not written by napari-lesionmix"):
        install_trainer(folder)
    with pytest.raises(InstallError, match="not written by napari-lesionmix"):
        uninstall_trainer(folder)
    assert path.read_text() == "class nnUNetTrainerLesionMix: pass\n"
    assert main(["nnunet", "install-trainer", "--into", str(folder)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    path.unlink()
    assert main(["nnunet", "install-trainer", "--into", str(folder)]) == 0
    assert "nnUNet_extTrainer" in capsys.readouterr().out
    assert main(["nnunet", "uninstall-trainer", "--into", str(folder)]) == 0
    assert not path.exists()


def _run(args, env, cwd, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, encoding="utf-8",
                          errors="replace", timeout=timeout)


@pytest.fixture(scope="module")
def nnunet_env(tmp_path_factory):
    """A tiny dataset planned and preprocessed by nnU-Net, and a copy of the nnunetv2
    package (so installing the trainer shim never touches the shared environment)."""
    base = tmp_path_factory.mktemp("nnunet")
    tiny_nnunet(base / "raw", recipe={"online": {"p": 1.0, "direction": "both"}})
    package = base / "site"
    src = Path(importlib.util.find_spec("nnunetv2").submodule_search_locations[0])
    shutil.copytree(src, package / "nnunetv2", ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(os.environ, nnUNet_raw=str(base / "raw"), nnUNet_preprocessed=str(base / "pre"),
               nnUNet_results=str(base / "res"), nnUNet_n_proc_DA="2", nnUNet_compile="f",
               PYTHONPATH=os.pathsep.join([str(package), str(ROOT)]))
    env.pop("LESIONMIX_RECIPE", None)
    bindir = Path(sys.executable).parent
    res = _run([str(bindir / "nnUNetv2_plan_and_preprocess"), "-d", "990", "-c", "3d_fullres",
                "-np", "1"], env, base)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    return base, env, bindir


@needs_nnunet
@pytest.mark.slow
def test_nnunet_trains_with_lesionmix(nnunet_env):
    base, env, bindir = nnunet_env
    res = _run([sys.executable, "-m", "napari_lesionmix.cli", "nnunet", "install-trainer"],
               env, base)
    shim = base / "site" / "nnunetv2" / "training" / "nnUNetTrainer" / SHIM_NAME
    assert res.returncode == 0 and shim.is_file(), res.stderr
    (shim.parent / "nnUNetTrainerLesionMixTiny.py").write_text(TINY)
    res = _run([str(bindir / "nnUNetv2_train"), "990", "3d_fullres", "0", "-tr",
                "nnUNetTrainerLesionMixTiny", "-device", "cpu"], env, base)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    logs = list((base / "res").rglob("training_log_*.txt"))
    assert len(logs) == 1
    log = logs[0].read_text()
    # the fold's bank and map: training cases of fold 0 only
    split = json.loads((base / "pre" / "Dataset990_TinyBrain" / "splits_final.json").read_text())[0]
    fold = base / "pre" / "Dataset990_TinyBrain" / "lesionmix" / "nnUNetPlans__3d_fullres" / "fold_0"
    prepared = json.loads((fold / "prepared.json").read_text())
    assert sorted(prepared["cases"]) == sorted(split["train"])
    index = json.loads((fold / "bank" / "index.json").read_text())
    sources = {e["lesion"]["case_name"] for e in index["entries"]}
    assert sources and sources <= set(split["train"]) and not sources & set(split["val"])
    assert sorted(p.stem for p in (fold / "maps").glob("*.npy")) == sorted(split["train"])
    assert re.search(r"LesionMix: built .*fold_0: \d+ lesions from \d of the 4 training cases "
                     r"of fold 0 \(the 2 validation cases are not used\)", log), log
    epochs = re.findall(r"LesionMix epoch (\d): (\d+) training patches, (\d+) drawn .*?, "
                        r"(\d+) lesions added, (\d+) removed", log)
    assert [e[0] for e in epochs] == ["0", "1"], log
    assert sum(int(e[3]) + int(e[4]) for e in epochs) > 0  # lesions were added or removed
    assert "Training done." in log
    # uninstall leaves nnU-Net's folder as it was
    res = _run([sys.executable, "-m", "napari_lesionmix.cli", "nnunet", "uninstall-trainer"],
               env, base)
    assert res.returncode == 0 and not shim.exists()


@needs_nnunet
@pytest.mark.slow
def test_transform_on_nnunet_patches(nnunet_env, monkeypatch):
    """nnU-Net's loader with LesionMix first: patches change where the case has tissue,
    the -1 region and the voxels away from the edits stay, the map is the case's."""
    base, env, _ = nnunet_env
    monkeypatch.setenv("nnUNet_preprocessed", env["nnUNet_preprocessed"])
    from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    from napari_lesionmix.core.recipe import Recipe
    from napari_lesionmix.integrations.nnunet.fold import FoldSource, prepare_fold
    from napari_lesionmix.integrations.nnunet.transform import (
        Counters,
        LesionMixDataLoader,
        LesionMixTransform,
    )
    from napari_lesionmix.integrations.online import OnlineLesionMix

    torch = pytest.importorskip("torch")
    from acvl_utils.cropping_and_padding.bounding_boxes import crop_and_pad_nd

    pre = base / "pre" / "Dataset990_TinyBrain"
    plans = PlansManager(str(pre / "nnUNetPlans.json"))
    conf = plans.get_configuration("3d_fullres")
    folder = str(pre / conf.data_identifier)
    ds_class = infer_dataset_class(folder)
    keys = ["brain01", "brain02", "brain03"]
    djson = json.loads((pre / "dataset.json").read_text())
    source = FoldSource(folder, keys, ds_class, djson["labels"], conf.spacing,
                        plans.transpose_forward)
    recipe = Recipe.from_json(base / "raw" / "Dataset990_TinyBrain" / "lesionmix_recipe.json")
    data, built = prepare_fold(source, recipe, base / "fold_test", "test")
    assert built and sorted(data.cases) == keys
    assert prepare_fold(source, recipe, base / "fold_test", "test")[1] is False  # reused
    counters = Counters()
    transform = LesionMixTransform(OnlineLesionMix(data), counters)
    loader = LesionMixDataLoader(ds_class(folder, keys), 1, [64, 72, 64], conf.patch_size,
                                 plans.get_label_manager(djson), transforms=transform)
    np.random.seed(0)  # noqa: NPY002 - nnU-Net's loader draws from numpy's global generator
    for _ in range(6):
        batch = loader.generate_train_batch()
        key = batch["keys"][0]
        assert key in keys and transform.where is None  # used and cleared
        image, seg = batch["data"][0].numpy(), batch["target"][0][0].numpy()
        assert image.shape == (1, 64, 72, 64) and seg.dtype == np.int16
    c = counters.since_last()
    assert c["samples"] == 6 and c["applied"] == 6 and c["added"] + c["removed"] > 0
    # one patch by hand: the -1 region stays, and lesions land where the case's map is
    np.random.seed(3)  # noqa: NPY002
    d, s, _, _ = ds_class(folder, keys).load_case("brain02")
    lbs = [-8, -11, -9]
    bbox = [[lo, lo + n] for lo, n in zip(lbs, (64, 72, 64))]
    img = torch.from_numpy(crop_and_pad_nd(np.asarray(d[:]), bbox, 0)).float()
    lab = torch.from_numpy(crop_and_pad_nd(np.asarray(s[:]), bbox, -1)).to(torch.int16)
    before_img, before_lab = img.clone(), lab.clone()
    for _ in range(5):
        transform.where = ("brain02", lbs)
        transform(image=img, segmentation=lab)
    assert torch.equal(lab == -1, before_lab == -1)
    assert torch.equal(img[:, (before_lab[0] == -1)], before_img[:, (before_lab[0] == -1)])
    new = (lab[0] == 1) & (before_lab[0] != 1)
    assert new.any()
    whole = data.case_map("brain02")
    idx = np.argwhere(new.numpy()) + np.array(lbs)
    assert (whole[tuple(idx.T)] > 0).mean() > 0.9
