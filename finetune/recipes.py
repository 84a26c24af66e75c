"""The paper recipes as data: model surgery, stages, trainable sets, optimisers, augmentation.

Paper 1 (Najid & Chahyati): ResNet-101, SGD lr 1e-4, momentum 0.9 nesterov, weight decay 1e-4,
batch 32, 50 epochs, weighted random sampling, random resized crop + horizontal flip.
Paper 2 (Sreenivas & Zhao): VGG19 without its FC layers, one linear layer (dropout 0.5 before it),
iterative unfreezing in six stages of 10 epochs with Adam, flip + rotation up to 10 degrees.

Choices the papers leave open, fixed here and shown by `finetune list` / `plan`:
- vgg19_unfreeze reduces the last conv block's 512 maps by global average pooling before the
  dropout and linear layer (works at any image size; 512 inputs to the classifier).
- vgg19_unfreeze's "Adam 1e-5 then 1e-6" over stages 1..4: stages 1-2 at 1e-5, stages 3-4 at 1e-6.
- resnet_ensemble's stage 2 (frozen backbone) runs 10 epochs.
- resnet_skip projects L0..L2 with 1x1 convs (+ batch norm) to L3's shape; L3 enters as it is.

The modern recipes (probe, partial, full, multilevel) work on any backbone featx extracts from,
with the field's usual defaults: the backbone's own preprocessing, random resized crop + flip,
AdamW, linear warm-up then cosine decay per step, label smoothing 0.1 where the trunk trains,
layer-wise learning-rate decay (0.75 per depth group: a transformer block, a CNN stage) for
`full`. Their heads pool each tap (global average of maps; the class token, or the mean of the
patch tokens, of token sequences) into a linear layer.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from featx.errors import FeatxError


@dataclass(frozen=True)
class Trainable:
    """Which parameters a stage trains: name globs, plus the last `last_convs` conv layers of the
    backbone (-1 = every conv layer)."""

    patterns: tuple[str, ...] = ()
    last_convs: int = 0
    # the last fraction of the trunk's depth units (finetune.depth: blocks of a transformer,
    # stages of a CNN), rounded up, with what follows them (final norm)
    last_units: float = 0.0


@dataclass(frozen=True)
class Optimizer:
    name: str  # key of finetune.optim.OPTIMIZERS
    lr: float
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    # (name globs, lr) for parameter groups with their own learning rate; the rest use `lr`
    group_lrs: tuple[tuple[tuple[str, ...], float], ...] = ()
    # layer-wise learning-rate decay: the trunk's depth group d of K (input to output, see
    # finetune.depth) trains at lr * layer_decay ** (K - d); 1.0 = off
    layer_decay: float = 1.0


@dataclass(frozen=True)
class Stage:
    name: str
    epochs: int
    trainable: Trainable
    optimizer: Optimizer
    loss: str = "ce"  # key of finetune.losses.LOSSES
    label_smoothing: float = 0.0


@dataclass(frozen=True)
class Recipe:
    name: str
    paper: str
    description: str
    backbone: str
    model: str  # key of finetune.models.MODELS
    stages: tuple[Stage, ...]
    augment: str  # key of finetune.data.AUGMENTATIONS
    sampler: str = "weighted"
    batch_size: int = 32
    image_size: int = 224  # 0: the backbone's own input size
    split: str = "80/5/15"
    scheduler: str = "none"  # key of finetune.optim.SCHEDULERS
    warmup_epochs: float = 0.0  # linear warm-up of schedulers that have one
    dropout: float = 0.5  # used by the models that have a dropout layer
    levels: tuple[str, ...] = ("L4",)  # the taps the classifier sees (for reports next to classify)


_SGD = Optimizer("sgd", lr=1e-4, momentum=0.9, nesterov=True, weight_decay=1e-4)
_HEADS = ("heads.*", "combiner.*")
_P1 = "Najid & Chahyati, Visual Emotion Recognition Using ResNet"
_P2 = "Sreenivas & Zhao, An Iterative Unfreezing Strategy for Visual Emotion Recognition"
_EVERYTHING = Trainable(("*",))


def _paper1(name: str, description: str, trainable: Trainable, model: str = "classifier",
            levels: tuple[str, ...] = ("L4",)) -> Recipe:
    return Recipe(name=name, paper=_P1, description=description, backbone="resnet101",
                  model=model, stages=(Stage("train", 50, trainable, _SGD),),
                  augment="resnet", levels=levels)


def _vgg_stages() -> tuple[Stage, ...]:
    head = ("classifier.*",)
    lrs = (1e-4, 1e-5, 1e-5, 1e-6, 1e-6)
    stages = [Stage(f"unfreeze_{k}", 10, Trainable(head, last_convs=k),
                    Optimizer("adam", lr=lr)) for k, lr in enumerate(lrs)]
    stages.append(Stage("unfreeze_all", 10, _EVERYTHING, Optimizer("adam", lr=1e-6)))
    return tuple(stages)


_ALL_LEVELS = ("L0", "L1", "L2", "L3", "L4")

RECIPES: dict[str, Recipe] = {r.name: r for r in (
    _paper1("resnet_fc", "fc only; backbone and its batch-norm statistics frozen",
            Trainable(("fc.*",))),
    _paper1("resnet_l4", "layer4 + fc", Trainable(("layer4.*", "fc.*"))),
    _paper1("resnet", "everything", _EVERYTHING),
    _paper1("resnet_l4_dropout", "layer4 + fc, Dropout2d(0.5) in every layer4 block between its "
            "3x3 conv and its last 1x1 conv", Trainable(("layer4.*", "fc.*")),
            model="l4_dropout"),
    Recipe(
        name="resnet_ensemble", paper=_P1,
        # the combiner only enters in stage 2: stage 1 trains everything else
        description="stage 1: backbone + one head per level L0..L4 (global pool -> linear), "
                    "the heads' cross-entropies summed; stage 2: backbone frozen, heads + a "
                    "learned weighted average of the heads' softmax outputs",
        backbone="resnet101", model="ensemble", augment="resnet", levels=_ALL_LEVELS,
        stages=(
            Stage("backbone_and_heads", 50,
                  Trainable(("conv1.*", "bn1.*", "layer*", "heads.*")),
                  dataclasses.replace(_SGD, group_lrs=((_HEADS, 1e-3),)), loss="heads_sum"),
            Stage("heads_and_combiner", 10, Trainable(_HEADS),
                  dataclasses.replace(_SGD, group_lrs=((_HEADS, 1e-3),)), loss="ce"),
        )),
    _paper1("resnet_skip", "L0..L3 brought to L3's shape by 1x1 convs (with stride), combined by "
            "a learned weighted average into layer4's input; trains those convs + layer4 + fc",
            Trainable(("skip.*", "combiner.*", "layer4.*", "fc.*")), model="skip",
            levels=_ALL_LEVELS),
    Recipe(
        name="vgg19_unfreeze", paper=_P2,
        description="VGG19 conv layers, global average pool, dropout 0.5, one linear layer; "
                    "stage k unfreezes the last k conv layers, the last stage everything",
        backbone="vgg19", model="vgg_gap", augment="vgg", split="90/5/5",
        stages=_vgg_stages()),
)}


_MODERN = "modern practice (any backbone)"
_HEAD = ("heads.*",)
_ADAMW = Optimizer("adamw", lr=1e-4, weight_decay=0.05)


def _modern(name: str, description: str, stages: tuple[Stage, ...], model: str = "head",
            levels: tuple[str, ...] = ("L4",)) -> Recipe:
    return Recipe(name=name, paper=_MODERN, description=description, backbone="resnet50",
                  model=model, stages=stages, augment="rrc_flip", image_size=0,
                  scheduler="warmup_cosine", warmup_epochs=1.0, levels=levels)


MODERN: dict[str, Recipe] = {r.name: r for r in (
    _modern("probe", "linear probe: trunk frozen (batch-norm statistics and dropout too, run "
            "without gradients), a linear head on the deepest level",
            (Stage("train", 30, Trainable(_HEAD),
                   Optimizer("adamw", lr=1e-3, weight_decay=1e-4)),)),
    _modern("partial", "the last stage (CNN) or the last quarter of the blocks (transformer), "
            "with what follows them, plus the head; the rest frozen",
            (Stage("train", 30, Trainable(_HEAD, last_units=0.25),
                   dataclasses.replace(_ADAMW, group_lrs=((_HEAD, 1e-3),)),
                   label_smoothing=0.1),)),
    _modern("full", "everything, with layer-wise learning-rate decay: one group per block "
            "(transformer) or stage (CNN), the rate shrinking by 0.75 per group towards the input",
            (Stage("train", 30, _EVERYTHING, dataclasses.replace(_ADAMW, layer_decay=0.75),
                   label_smoothing=0.1),)),
    _modern("multilevel", "paper 1's ensemble for any backbone: stage 1 the trunk + a head on "
            "each of the five taps, their cross-entropies summed; stage 2 trunk frozen, the heads "
            "+ a learned weighted average of their softmax outputs",
            (Stage("trunk_and_heads", 30, Trainable(("trunk.*", "heads.*")),
                   dataclasses.replace(_ADAMW, group_lrs=((_HEADS, 1e-3),)), loss="heads_sum",
                   label_smoothing=0.1),
             Stage("heads_and_combiner", 10, Trainable(_HEADS),
                   dataclasses.replace(_ADAMW, group_lrs=((_HEADS, 1e-3),)))),
            model="multilevel", levels=_ALL_LEVELS),
)}

RECIPES.update(MODERN)


def list_recipes() -> list[str]:
    return list(RECIPES)


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise FeatxError(f"unknown recipe {name!r}: choose one of {', '.join(RECIPES)}")
    return RECIPES[name]


def _replace_optim(stage: Stage, **changes) -> Stage:
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        return stage
    return dataclasses.replace(stage, optimizer=dataclasses.replace(stage.optimizer, **changes))


def override(recipe: Recipe, *, backbone: str | None = None, epochs: int | None = None,
             stage_epochs: list[int] | None = None, lr: float | None = None,
             head_lr: float | None = None, optimizer: str | None = None,
             momentum: float | None = None, nesterov: bool | None = None,
             weight_decay: float | None = None, layer_decay: float | None = None,
             label_smoothing: float | None = None, **fields) -> Recipe:
    """The recipe with command-line overrides applied (None = keep the paper's value)."""
    if stage_epochs is not None and len(stage_epochs) != len(recipe.stages):
        raise FeatxError(f"--stage-epochs: {recipe.name} has {len(recipe.stages)} stages, got "
                         f"{len(stage_epochs)} numbers")
    stages = []
    for i, st in enumerate(recipe.stages):
        if epochs is not None:
            st = dataclasses.replace(st, epochs=epochs)
        if stage_epochs is not None:
            st = dataclasses.replace(st, epochs=stage_epochs[i])
        st = _replace_optim(st, lr=lr, name=optimizer, momentum=momentum, nesterov=nesterov,
                            weight_decay=weight_decay, layer_decay=layer_decay)
        if label_smoothing is not None:
            st = dataclasses.replace(st, label_smoothing=label_smoothing)
        if head_lr is not None and st.optimizer.group_lrs:
            st = _replace_optim(st, group_lrs=tuple((pats, head_lr)
                                                    for pats, _ in st.optimizer.group_lrs))
        if st.epochs < 0:
            raise FeatxError(f"--epochs must be >= 0, got {st.epochs}")
        stages.append(st)
    changes = {k: v for k, v in fields.items() if v is not None}
    unknown = set(changes) - {f.name for f in dataclasses.fields(Recipe)}
    if unknown:
        raise TypeError(f"unknown recipe fields {sorted(unknown)}")
    if backbone is not None:
        changes["backbone"] = backbone
    return dataclasses.replace(recipe, stages=tuple(stages), **changes)


def recipe_to_dict(recipe: Recipe) -> dict:
    return dataclasses.asdict(recipe)


def recipe_from_dict(d: dict) -> Recipe:
    """Inverse of recipe_to_dict (after a JSON round trip: lists back to tuples)."""
    def opt(o: dict) -> Optimizer:
        groups = tuple((tuple(p), float(lr)) for p, lr in o.get("group_lrs", ()))
        return Optimizer(**{**o, "group_lrs": groups})

    stages = tuple(Stage(name=s["name"], epochs=int(s["epochs"]),
                         trainable=Trainable(tuple(s["trainable"]["patterns"]),
                                             int(s["trainable"]["last_convs"]),
                                             float(s["trainable"].get("last_units", 0.0))),
                         optimizer=opt(s["optimizer"]), loss=s["loss"],
                         label_smoothing=float(s.get("label_smoothing", 0.0)))
                   for s in d["stages"])
    return Recipe(**{**d, "stages": stages, "levels": tuple(d["levels"])})
