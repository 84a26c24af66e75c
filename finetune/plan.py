"""What a recipe trains, stage by stage (`finetune plan`); the run builds its stages from this."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from finetune import freeze
from finetune.optim import Group, describe, group_names, no_decay_names
from finetune.recipes import Recipe, Stage


@dataclass
class StagePlan:
    stage: Stage
    trainable: list[str]
    groups: list[Group]  # (lr, parameter names, label)

    def to_json(self, model: nn.Module) -> dict:
        numel = {n: p.numel() for n, p in model.named_parameters()}
        spec = self.stage.optimizer
        exempt = no_decay_names(model, spec)
        return {
            "name": self.stage.name,
            "epochs": self.stage.epochs,
            "trainable": self.trainable,
            "n_trainable": sum(numel[n] for n in self.trainable),
            "param_groups": [{"lr": lr, "n": sum(numel[n] for n in ns),
                              "weight_decay": spec.weight_decay,
                              "n_no_decay": sum(numel[n] for n in ns if n in exempt),
                              **({"name": label, "tensors": len(ns)} if label else {})}
                             for lr, ns, label in self.groups],
            "optimizer": describe(self.stage.optimizer),
        }


def stage_plan(model: nn.Module, stage: Stage) -> StagePlan:
    names = freeze.select(model, stage.trainable)
    depth = None
    if stage.optimizer.layer_decay != 1.0 and hasattr(model, "depth_groups"):
        depth = model.depth_groups(freeze.used_parameters(model))
    return StagePlan(stage, names, group_names(names, stage.optimizer, depth))


def recipe_plan(model: nn.Module, recipe: Recipe) -> dict:
    """SPEC's plan JSON (counts are numbers of scalar parameters)."""
    return {"recipe": recipe.name, "backbone": recipe.backbone,
            "stages": [stage_plan(model, st).to_json(model) for st in recipe.stages]}
