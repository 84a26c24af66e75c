"""kill -9 in the middle of training, then --resume: the result equals an uninterrupted run's."""

from __future__ import annotations

import torch

from .finetune_helpers import QUICK, killed_and_reference_runs, metrics

# resnet_l4_dropout: momentum, dropout (torch RNG), weighted sampling and augmentation all matter
ARGS = ["resnet_l4_dropout", "--epochs", "3", "--lr", "0.01", "--checkpoint-every", "5", *QUICK]


def test_killed_run_resumes_to_the_same_weights(images, tmp_path):
    ref_dir, run_dir = killed_and_reference_runs(ARGS, images, tmp_path)

    a = torch.load(ref_dir / "last.pt", weights_only=True)
    b = torch.load(run_dir / "last.pt", weights_only=True)
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    # the same epochs, losses and validation figures, each epoch logged once
    keys = ("stage", "epoch", "train_loss", "val_accuracy", "val_macro_recall")
    assert [[r[k] for k in keys] for r in metrics(run_dir)] == \
        [[r[k] for k in keys] for r in metrics(ref_dir)]
    assert (run_dir / "test.json").read_text() == (ref_dir / "test.json").read_text()
