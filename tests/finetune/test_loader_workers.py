"""Loader workers change nothing but speed: the same weights as loading in-process, with the
training workers started once for the whole run (not forked anew each epoch)."""

from __future__ import annotations

import torch

from finetune import distributed
from finetune.config import RunConfig
from finetune.recipes import get_recipe, override
from finetune.train import Trainer


def train(images, out, workers: int) -> Trainer:
    # 48 training images, batch 4, 3 steps an epoch: each epoch leaves the loader mid-pass
    rec = override(get_recipe("resnet_l4_dropout"), backbone="resnet18", epochs=3,
                   image_size=32, batch_size=4, split="60/20/20", lr=0.05)
    cfg = RunConfig(recipe=rec, data=str(images), out=out, weights="none", workers=workers,
                    quiet=True, steps_per_epoch=3)
    trainer = Trainer(cfg, distributed.Context(0, 1, 0, torch.device("cpu")))
    pids = []
    run_epoch = trainer._train_epoch

    def watched(*args, **kwargs):
        run_epoch(*args, **kwargs)
        it = trainer.train_loader._iterator
        pids.append(sorted(w.pid for w in it._workers) if it is not None else [])

    trainer._train_epoch = watched
    trainer.run()
    trainer.worker_pids = pids
    return trainer


def test_workers_give_the_same_weights_and_start_once(images, tmp_path):
    inline = train(images, tmp_path / "inline", workers=0)
    pooled = train(images, tmp_path / "pooled", workers=2)
    a, b = inline.model.state_dict(), pooled.model.state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert len(pooled.worker_pids) == 3 and len(pooled.worker_pids[0]) == 2
    assert all(p == pooled.worker_pids[0] for p in pooled.worker_pids)
    assert inline.worker_pids == [[], [], []]
