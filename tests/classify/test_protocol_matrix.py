"""The row rule under every combination: caches extracted by `featx extract` with each split
form x each task, x each evaluating command, x --split / --task given or not. Every cell is
either a result whose rows are exactly the protocol's (test rows counted per class against an
independent expectation, a saved model's train+val rows recorded exactly, nothing scored that
the model saw) and whose recorded protocol is what was used -- or a one-line refusal, where the
rule says one is due. The cells are generated: a new split form, task, command or option joins
by adding it to its table."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from classify.rowrule import row_ids, rows_fingerprint
from featx.cache import fingerprint
from featx.splits import has_rounds
from featx.tasks import task_name

from . import protocol_caches as pc

# what an option replaces, per split form / task: every form and task is also given once
GIVEN_SPLIT = {"ratio": "kfold:3", "kfold": "kfold:3:2", "kfold_fold": "70/15/15",
               "csv": "kfold:3:0"}
GIVEN_SEED = 5  # goes with a given --split: the re-split's seed
GIVEN_TASK = {"emotion": "sentiment", "sentiment": "map", "map": "emotion"}
OTHER_FORM = {"ratio": "csv", "kfold": "ratio", "kfold_fold": "ratio", "csv": "ratio"}


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    folder = tmp_path_factory.mktemp("matrix")
    made = {(s, t): pc.extract(folder, s, t) for s in pc.SPLITS for t in pc.TASKS}
    (folder / "grid.json").write_text('[{"levels": "L4"}]')
    return folder, made


def _invoke(args) -> tuple[int, str, str]:
    from classify.cli import main

    res = CliRunner().invoke(main, [str(a) for a in args])
    return res.exit_code, res.output, repr(res.exception)


class Cell:
    """One cell: the cache, the options given, and what the protocol must be."""

    def __init__(self, folder: Path, made: dict, form: str, task: str, split_given: bool,
                 task_given: bool, tmp: Path):
        self.folder, self.made, self.tmp = folder, made[form, task], tmp
        self.other = made[OTHER_FORM[form], task]  # the same images under another split
        self.form, self.task = form, task
        self.split = GIVEN_SPLIT[form] if split_given else None
        self.task_opt = GIVEN_TASK[task] if task_given else None
        self.opts = []
        if self.split:
            self.opts += ["--split", self.split, "--seed", GIVEN_SEED]
        if self.task_opt:
            self.opts += ["--task", pc.task_option(self.task_opt, folder)]
        self.eff_task = self.task_opt or task
        self.seed = GIVEN_SEED if self.split else pc.SEED
        self.rounds = pc.expected_rounds(self.made, self.split, self.seed)
        self.classes, self.mapping = pc.task_of(self.eff_task, folder)
        own = pc.SPLITS[form] or "csv"
        self.record = {
            "split": self.split or own,
            "fold": self.rounds[0][1] if len(self.rounds) == 1 else None,
            "seed": self.seed,
            "task": task_name(pc.task_option(self.eff_task, folder)),
            "task_map": self.mapping,
            "task_hash": fingerprint({"map": self.mapping})[:16] if self.mapping else None}

    @property
    def several_rounds(self) -> bool:
        return has_rounds(self.record["split"])

    def labels(self, made: pc.Made) -> np.ndarray:
        """The true class (index into the task's classes) of each row of `made`."""
        names = [pc.CLASSES[i] for i in made.original]
        return np.array([self.classes.index(self.mapping[n] if self.mapping else n)
                         for n in names])

    def check_rows(self, rows: list[dict]) -> None:
        """Each row's recorded protocol and its test rows, per class, as expected."""
        y = self.labels(self.made)
        for r in rows:
            assert r["protocol"] == self.record, (r["name"], r["protocol"], self.record)
            assert list(r["test"]["per_class_recall"]) == self.classes
            if r.get("fold") == "all":  # k-fold summary: every image tested once
                test = np.ones(len(y), dtype=bool)
            else:
                want = [s for s, f in self.rounds if f == r.get("fold", self.rounds[0][1])]
                assert len(want) == 1, r.get("fold")
                test = want[0] == 2
            support = np.asarray(r["test"]["confusion"]).sum(axis=1)
            assert support.tolist() == np.bincount(y[test], minlength=len(self.classes)).tolist()
            assert r["test_rows"] == rows_fingerprint(
                [p for p, t in zip(self.made.paths, test) if t]), r["name"]
        summaries = [r for r in rows if r.get("fold") == "all"]
        assert bool(summaries) == self.several_rounds
        assert all(r["kfold"]["k"] == len(self.rounds) for r in summaries)

    def seen(self) -> np.ndarray:
        """The train+val row identities a saved model must record (one round)."""
        (split, _), = self.rounds
        assert not ((split == 2) & (split < 2)).any()
        return np.unique(row_ids([p for p, s in zip(self.made.paths, split) if s < 2]))

    def zeroshot_refused(self) -> bool:
        """The cache's prompts are for its own classes; refused where one of them holds
        images of several classes of the task asked."""
        own_classes, own_map = pc.task_of(self.task, self.folder)
        own = [own_map[c] if own_map else c for c in pc.CLASSES]
        eff = [self.mapping[c] if self.mapping else c for c in pc.CLASSES]
        return any(len({e for o2, e in zip(own, eff) if o2 == o}) > 1 for o in own)


def _json(path: Path) -> list[dict]:
    return json.loads(path.read_text())["rows"]


def cmd_fit(c: Cell):
    out = c.tmp / "fit.json"
    code, text, exc = _invoke(["fit", c.made.path, "--json", out, "--quiet", *c.opts])
    yield code, text, exc, False
    c.check_rows(_json(out))


def cmd_stack(c: Cell):
    out = c.tmp / "stack.json"
    code, text, exc = _invoke(["stack", c.made.path, "--levels", "L3,L4", "--folds", "2",
                               "--json", out, "--quiet", *c.opts])
    yield code, text, exc, False
    c.check_rows(_json(out))


def cmd_ablate(c: Cell):
    out = c.tmp / "ablate.json"
    code, text, exc = _invoke(["ablate", c.made.path, "--grid", c.folder / "grid.json",
                               "--out", c.tmp / "abl", "--json", out, "--quiet", "--jobs", "1",
                               *c.opts])
    yield code, text, exc, False
    c.check_rows(_json(out))


def cmd_zeroshot(c: Cell):
    clip = pc.with_prompts(c.made, c.tmp / "clip.h5")
    out = c.tmp / "zs.json"
    code, text, exc = _invoke(["zeroshot", clip, "--json", out, *c.opts])
    yield code, text, exc, c.zeroshot_refused()
    c.check_rows(_json(out))


def cmd_eval(c: Cell):
    other = c.other
    out = c.tmp / "eval.json"
    code, text, exc = _invoke(["fit", c.made.path, "--eval", other.path, "--json", out,
                               "--quiet", *c.opts])
    yield code, text, exc, c.several_rounds  # one model is evaluated across sets
    own, cross = _json(out)
    c.check_rows([own])
    assert cross["protocol"] == c.record
    unseen = ~np.isin(row_ids(other.paths), c.seen())
    assert cross["cross_dataset"]["excluded_seen"] == int((~unseen).sum())
    assert cross["test_rows"] == rows_fingerprint(
        [p for p, u in zip(other.paths, unseen) if u])
    support = np.asarray(cross["test"]["confusion"]).sum(axis=1)
    assert support.tolist() == np.bincount(c.labels(other)[unseen],
                                           minlength=len(c.classes)).tolist()


def _predict(c: Cell, command: list, target: pc.Made, report: bool):
    from classify.persist import load_model

    model = c.tmp / "m.npz"
    code, text, exc = _invoke([*command, "--out", model, "--quiet", *c.opts])
    yield code, text, exc, c.several_rounds  # k-fold rounds are no one model: refused
    out = c.tmp / "p.json"
    args = ["predict", model, target.path, "--out", c.tmp / "p.csv", "--json", out, "--quiet"]
    code, text, exc = _invoke(args + (["--report", c.tmp / "rep"] if report else []))
    yield code, text, exc, False
    bundle = load_model(model)
    assert bundle["protocol"] == c.record
    seen = c.seen()
    assert np.array_equal(np.sort(bundle["seen_rows"]), seen)  # exactly its train+val rows
    row, = _json(out)
    unseen = ~np.isin(row_ids(target.paths), seen)
    assert row["excluded_seen"] == int((~unseen).sum())
    assert row["test_rows"] == rows_fingerprint([p for p, u in zip(target.paths, unseen) if u])
    support = np.asarray(row["test"]["confusion"]).sum(axis=1)
    assert support.tolist() == np.bincount(c.labels(target)[unseen],
                                           minlength=len(c.classes)).tolist()
    if report:
        assert (c.tmp / "rep" / "gallery.html").is_file()


def cmd_predict_report(c: Cell):
    yield from _predict(c, ["stack", c.made.path, "--levels", "L3,L4", "--folds", "2"],
                        c.made, True)


def cmd_out_predict(c: Cell):
    """A model saved by fit, predicted on a cache of the same images under another split."""
    yield from _predict(c, ["fit", c.made.path], c.other, False)


COMMANDS = {"fit": cmd_fit, "stack": cmd_stack, "ablate": cmd_ablate, "zeroshot": cmd_zeroshot,
            "eval": cmd_eval, "predict_report": cmd_predict_report,
            "out_predict": cmd_out_predict}
CELLS = list(itertools.product(pc.SPLITS, pc.TASKS, COMMANDS, (False, True), (False, True)))


@pytest.mark.parametrize("form,task,command,split_given,task_given", CELLS,
                         ids=["-".join(map(str, c)) for c in CELLS])
def test_cell(caches, tmp_path, form, task, command, split_given, task_given):
    folder, made = caches
    cell = Cell(folder, made, form, task, split_given, task_given, tmp_path)
    steps = COMMANDS[command](cell)
    for code, text, exc, refusal_due in steps:
        if refusal_due:
            lines = text.strip().splitlines()
            assert code != 0 and len(lines) == 1 and lines[0].startswith("Error: "), text
            assert "Traceback" not in text
            return
        assert code == 0, text + exc
