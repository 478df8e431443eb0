"""splits_final.json: folds grouped by source case, and nnU-Net reading them."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_lesionmix.batch.options import GenerateOptions
from napari_lesionmix.batch.runner import generate
from napari_lesionmix.batch.splits import SplitError, grouped_splits, install_splits
from napari_lesionmix.cli import main
from tests.batch.helpers import make_nnunet


def check_no_leak(splits, originals, sources_of):
    """Every property the split promises."""
    originals = set(originals)
    assert len(splits) == min(5, len(originals))
    vals = [set(f["val"]) for f in splits]
    assert set().union(*vals) == originals and sum(map(len, vals)) == len(originals)
    for fold, val in zip(splits, vals):
        train = set(fold["train"])
        assert val <= originals and not (train & val)  # validation: originals only
        assert originals - val <= train
        for case, source in sources_of.items():
            # a synthesised case trains exactly where its source trains
            assert (case in train) == (source in train) and case not in val


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 13), st.lists(st.integers(0, 12), max_size=40))
def test_grouped_splits_never_leak(n_sources, picks):
    originals = [f"s{i:02d}" for i in range(n_sources)]
    sources_of = {f"s{p % n_sources:02d}_lmix{k:04d}": f"s{p % n_sources:02d}"
                  for k, p in enumerate(picks)}
    check_no_leak(grouped_splits(originals, sources_of), originals, sources_of)


def test_one_source_has_no_leak_free_split():
    with pytest.raises(SplitError, match="at least 2 source"):
        grouped_splits(["a"], {"a_lmix0000": "a"})


def _generate(inp, out, n, **kw):
    return generate(GenerateOptions(inp, out, n, workers=1, progress=False, **kw),
                    say=lambda m: None)


def test_generate_writes_the_split_or_says_why_not(tmp_path):
    ds = make_nnunet(tmp_path / "in", n_cases=6, channels=1)
    out = tmp_path / "Dataset501_Test"
    s = _generate(ds, out, 9)
    splits = json.loads((out / "splits_final.json").read_text())
    sources_of = {n: n.split("_lmix")[0] for n in s.names}
    check_no_leak(splits, [f"sub{i:02d}" for i in range(6)], sources_of)
    # without the originals there is nothing to validate on
    s = _generate(ds, tmp_path / "noorig", 3, originals=False)
    assert not (tmp_path / "noorig" / "splits_final.json").exists()
    assert any("no original cases" in note for note in s.notes)
    one = make_nnunet(tmp_path / "one", n_cases=1, zero_load=False)
    s = _generate(one, tmp_path / "oneout", 2)
    assert not (tmp_path / "oneout" / "splits_final.json").exists()
    assert any("at least 2 source" in note for note in s.notes)


def test_install_respects_the_environment_and_never_overwrites_silently(tmp_path, monkeypatch,
                                                                         capsys):
    ds = make_nnunet(tmp_path / "in", n_cases=3, channels=1)
    out = tmp_path / "Dataset502_Test"
    _generate(ds, out, 3)
    pre = tmp_path / "pre"
    monkeypatch.delenv("nnUNet_preprocessed", raising=False)
    assert main(["splits", str(out), "--install"]) == 2
    assert "nnUNet_preprocessed is not set" in capsys.readouterr().err
    monkeypatch.setenv("nnUNet_preprocessed", str(pre))
    assert main(["splits", str(out), "--install"]) == 2
    assert "run nnUNetv2_plan_and_preprocess" in capsys.readouterr().err
    (pre / out.name).mkdir(parents=True)
    assert main(["splits", str(out), "--install"]) == 0
    target = pre / out.name / "splits_final.json"
    assert target.read_bytes() == (out / "splits_final.json").read_bytes()
    assert "fold 2: train" in capsys.readouterr().out
    assert install_splits(out)[1] is False  # identical: nothing to do
    target.write_text('[{"train": ["sub00"], "val": ["sub00_lmix0000"]}]')
    assert main(["splits", str(out), "--install"]) == 2
    assert "exists and differs" in capsys.readouterr().err
    assert "lmix" in target.read_text()  # untouched
    assert main(["splits", str(out), "--install", "--overwrite"]) == 0
    assert target.read_bytes() == (out / "splits_final.json").read_bytes()
    other = tmp_path / "my_output"
    _generate(ds, other, 3)
    with pytest.raises(SplitError, match="DatasetXXX_Name"):
        install_splits(other)
    (pre / "Dataset503_Other").mkdir()
    assert install_splits(other, dataset="Dataset503_Other")[1] is True


# nnU-Net's own trainer reads the split (nnUNetv2_train's path: get_trainer_from_args, then
# get_tr_and_val_datasets); in its own interpreter, as nnU-Net reads its paths at import.
TRAINER = textwrap.dedent("""
    import json, sys
    import torch
    from nnunetv2.run.run_training import get_trainer_from_args

    if __name__ == "__main__":
        out = []
        for fold in range(int(sys.argv[2])):
            t = get_trainer_from_args(sys.argv[1], "3d_fullres", fold, device=torch.device("cpu"))
            tr, val = t.get_tr_and_val_datasets()
            out.append({"train": sorted(tr.identifiers), "val": sorted(val.identifiers)})
        print("SPLITS=" + json.dumps(out))
""")


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("nnunetv2") is None,
                    reason="nnunetv2 is not installed")
def test_nnunet_trains_on_the_grouped_split(tmp_path):
    raw, pre, res = tmp_path / "raw", tmp_path / "pre", tmp_path / "res"
    for d in (raw, pre, res):
        d.mkdir()
    ds = make_nnunet(tmp_path / "in", n_cases=7, channels=1)
    name = "Dataset555_LesionMix"
    s = _generate(ds, raw / name, 14)
    assert s.exit_code == 0
    env = dict(os.environ, nnUNet_raw=str(raw), nnUNet_preprocessed=str(pre),
               nnUNet_results=str(res))
    bin_dir = os.path.dirname(sys.executable)
    prep = subprocess.run([os.path.join(bin_dir, "nnUNetv2_plan_and_preprocess"), "-d", "555",
                           "-c", "3d_fullres", "-np", "1", "-npfp", "1"], env=env,
                          capture_output=True, text=True, timeout=600,
                         encoding="utf-8", errors="replace")
    assert prep.returncode == 0, prep.stdout[-2000:] + prep.stderr[-2000:]
    # nnU-Net's planner copied the raw folder's split; installing it again changes nothing
    res_install = subprocess.run([sys.executable, "-m", "napari_lesionmix.cli", "splits",
                                  str(raw / name), "--install"], env=env, capture_output=True,
                                 text=True, timeout=120)
    assert res_install.returncode == 0 and "already installed" in res_install.stdout
    script = tmp_path / "trainer_split.py"
    script.write_text(TRAINER)
    run = subprocess.run([sys.executable, str(script), name, "5"], env=env,
                         capture_output=True, text=True, timeout=600,
                         encoding="utf-8", errors="replace")
    assert run.returncode == 0, run.stderr[-3000:]
    line = next(x for x in run.stdout.splitlines() if x.startswith("SPLITS="))
    folds = json.loads(line[len("SPLITS="):])
    sources_of = {n: n.split("_lmix")[0] for n in s.names}
    check_no_leak(folds, [f"sub{i:02d}" for i in range(7)], sources_of)
    assert folds == json.loads((raw / name / "splits_final.json").read_text())
