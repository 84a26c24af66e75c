"""finetune takes featx's split forms: a k-fold round names its test fold."""

from __future__ import annotations

from click.testing import CliRunner

from featx.dataset import load_collection
from finetune.cli import main
from finetune.recipes import get_recipe, override

from ..featx import dataset_layouts as lay


def test_split_kfold_round(tmp_path):
    res = CliRunner().invoke(main, ["plan", "resnet_fc", "--backbone", "resnet18",
                                    "--split", "kfold:5"])
    assert res.exit_code != 0 and "name its test fold" in res.output
    res = CliRunner().invoke(main, ["plan", "resnet_fc", "--backbone", "resnet18",
                                    "--split", "kfold:5:x"])
    assert res.exit_code != 0 and "kfold:K" in res.output
    rec = override(get_recipe("resnet_fc"), split="kfold:3:2")
    for cls in ("awe", "fear"):
        for i in range(6):
            lay.write_image(tmp_path / cls / f"{i}.jpg", seed=i + len(cls))
    # what the trainer does with the recipe's split: fold 2 of 3 as test, fold 0 as val
    coll = load_collection(tmp_path, rec.split, 0)
    assert coll.split_spec == "kfold:3:2"
    assert (coll.split[coll.fold == 2] == 2).all() and (coll.split[coll.fold == 0] == 1).all()
