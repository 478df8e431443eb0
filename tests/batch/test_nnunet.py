"""Proof that nnU-Net v2 takes the output: its own verify_dataset_integrity."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

from napari_lesionmix.batch.options import GenerateOptions
from napari_lesionmix.batch.runner import generate
from tests.batch.helpers import make_nnunet

pytestmark = pytest.mark.skipif(importlib.util.find_spec("nnunetv2") is None,
                                reason="nnunetv2 is not installed (pip install nnunetv2 "
                                       "\"torch==2.13.0\")")

# verify_dataset_integrity starts a spawn pool even for one process, so it runs in a
# script guarded by __main__, in its own interpreter.
SCRIPT = textwrap.dedent("""
    import sys
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

    if __name__ == "__main__":
        verify_dataset_integrity(sys.argv[1], num_processes=1)
        print("NNUNET-OK")
""")


def nnunet_verify(folder, tmp_path) -> subprocess.CompletedProcess:
    script = tmp_path / "verify_nnunet.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, nnUNet_raw=str(tmp_path), nnUNet_preprocessed=str(tmp_path),
               nnUNet_results=str(tmp_path))
    return subprocess.run([sys.executable, str(script), str(folder)], capture_output=True,
                          text=True, env=env, timeout=300, encoding="utf-8", errors="replace")


@pytest.mark.slow
@pytest.mark.parametrize("organ", [False, True])
def test_nnunet_verify_dataset_integrity(tmp_path, organ):
    inp = make_nnunet(tmp_path / "in", n_cases=3, channels=1 if organ else 2, organ=organ)
    out = tmp_path / "Dataset500_LesionMix"
    recipe = None
    if organ:
        recipe = tmp_path / "r.json"
        recipe.write_text('{"organ_label": 1}')
    s = generate(GenerateOptions(input=inp, output=out, n=4, workers=1, recipe=recipe,
                                 progress=False), say=lambda m: None)
    assert s.exit_code == 0
    res = nnunet_verify(out, tmp_path)
    assert res.returncode == 0 and "NNUNET-OK" in res.stdout, res.stdout + res.stderr
    assert "Error" not in res.stdout


@pytest.mark.slow
def test_nnunet_verify_catches_a_broken_export(tmp_path):
    """The check above can fail: a missing label file makes nnU-Net refuse."""
    inp = make_nnunet(tmp_path / "in", n_cases=3, channels=1)
    out = tmp_path / "Dataset501_Broken"
    generate(GenerateOptions(input=inp, output=out, n=2, workers=1, progress=False),
             say=lambda m: None)
    (out / "labelsTr" / "sub00_lmix0000.nii.gz").unlink()
    res = nnunet_verify(out, tmp_path)
    assert res.returncode != 0
