"""finetune speaks featx's and classify's protocols: the data options through featx's own
readers, `finetune cv` (k-fold rounds and classify's summary row), the label-distribution
target (KL loss, classify's LDL measures) and cross-dataset evaluation (`RUN -> OTHER`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from classify.ldl import ldl_measures
from classify.metrics import evaluate
from featx.cli import main as featx_main
from featx.dataset import load_collection
from featx.extract import ExtractConfig, collection_for
from featx.synthetic import generate_images
from finetune.cli import main
from finetune.config import collection_digest
from finetune.losses import cross_entropy

from ..featx import dataset_layouts as lay

# resnet18 at 32 px, a step or two an epoch: protocol checks, not learning
TINY = ["--backbone", "resnet18", "--weights", "none", "--image-size", "32", "--batch-size",
        "4", "--workers", "0", "--quiet"]
CLASSES4 = ("amusement", "anger", "awe", "fear")


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def ok(res) -> None:
    assert res.exit_code == 0, res.output


def preds(run: Path, split: str = "test") -> dict:
    return json.loads((run / "predictions.json").read_text())[split]


@pytest.fixture(scope="module")
def four(tmp_path_factory) -> Path:
    """4 classes x 6 images of 36 px."""
    return generate_images(tmp_path_factory.mktemp("four"), n_per_class=6, size=36, seed=1,
                           classes=CLASSES4)


def _emotion6(root: Path, n: int = 5) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for kw in ("anger", "disgust", "fear", "joy", "sadness", "surprise"):
        for i in range(n):
            p = rng.dirichlet(np.ones(7) * 0.5).round(3)
            p[int(rng.integers(7))] += 1 - p.sum()  # sums to 1 at the file's precision
            rows.append((f"{kw}/{i}.jpg", [max(float(x), 0.0) for x in p]))
    return lay.emotion6(root, rows, real=True)


@pytest.fixture(scope="module")
def emotion6(tmp_path_factory) -> Path:
    return _emotion6(tmp_path_factory.mktemp("e6"))


def _twitter1(root: Path) -> Path:
    names = {f"{i}.jpg": ("positive" if i % 2 else "negative") for i in range(16)}
    root = lay.twitter1(root, names, {n: 3 + i % 3 for i, n in enumerate(names)})
    for i, n in enumerate(names):
        lay.write_image(root / "images" / n, real=True, seed=i)
    return root


def _conflicted(root: Path) -> Path:
    """Class folders where two identical files carry different labels."""
    generate_images(root, n_per_class=5, size=36, seed=2, classes=CLASSES4)
    shutil.copy(root / "awe" / "awe_0000.jpg", root / "fear" / "copy.jpg")
    return root


def _csv(root: Path) -> Path:
    """A CSV manifest with an official split and p_<class> distributions."""
    generate_images(root, n_per_class=6, size=36, seed=3, classes=("amusement", "anger"))
    lines = ["path,label,split,p_amusement,p_anger"]
    for k, cls in enumerate(("amusement", "anger")):
        for i in range(6):
            p = 0.6 + 0.05 * i
            lines.append(f"{cls}/{cls}_{i:04d}.jpg,{cls},{('train', 'train', 'val', 'test')[i % 4]}"
                         f",{p if k == 0 else 1 - p:.2f},{1 - p if k == 0 else p:.2f}")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    return root / "manifest.csv"


def _abstract(root: Path) -> Path:
    """Abstract's votes (4 of its 8 classes used), real images."""
    rows = [(f"abs_{i:02d}.jpg", [(5 if c == i % 4 else i % 3) for c in range(8)])
            for i in range(12)]
    root = lay.abstract(root, rows)
    for i, (name, _) in enumerate(rows):
        lay.write_image(root / name, real=True, seed=i)
    return root


# (layout builder, data options): each read by finetune as featx extract reads it
LAYOUTS = {
    "emotion6-keyword": (_emotion6, []),
    "emotion6-dominant": (_emotion6, ["--label", "dominant"]),
    "twitter1-agree4": (_twitter1, ["--agree", "4"]),
    "twitter1-agree3-format": (_twitter1, ["--agree", "3", "--format", "twitter1"]),
    "conflicts-drop": (_conflicted, ["--conflicts", "drop"]),
    "conflicts-majority-sentiment": (_conflicted, ["--conflicts", "majority", "--task",
                                                   "sentiment"]),
    "csv-official-distribution": (_csv, ["--split", "official", "--target", "distribution"]),
    "abstract-votes-distribution": (_abstract, ["--target", "distribution"]),
}


def _extract_config(data: Path, opts: list[str], split: str) -> ExtractConfig:
    kw = dict(zip(opts[::2], opts[1::2]))
    return ExtractConfig(data=data, split=kw.get("--split", split), format=kw.get("--format"),
                         conflicts=kw.get("--conflicts", "keep"),
                         label=kw.get("--label", "keyword"), agree=int(kw.get("--agree", 5)),
                         task=kw.get("--task"))


@pytest.mark.parametrize("case", list(LAYOUTS))
def test_data_options_read_as_featx_extract_reads_them(case, tmp_path):
    build, opts = LAYOUTS[case]
    data = build(tmp_path / "data")
    out = tmp_path / "run"
    ok(invoke("run", "resnet_fc", "--data", data, "--epochs", "0", "--split", "50/25/25",
              "--out", out, *opts, *TINY))
    cfg = json.loads((out / "config.json").read_text())
    coll = collection_for(_extract_config(data, opts, "50/25/25"))
    assert cfg["classes"] == coll.classes
    assert cfg["collection"] == collection_digest(coll)  # same paths, labels and split
    kw = dict(zip(opts[::2], opts[1::2]))
    rec = cfg["data_options"]
    assert rec["format"] == coll.dataset_format
    assert rec["label"] == kw.get("--label", "keyword")
    assert rec["agree"] == int(kw.get("--agree", 5))
    assert rec["conflicts"] == kw.get("--conflicts", "keep")
    assert rec["task"] == kw.get("--task", "emotion")
    if kw.get("--split") == "official":  # the CSV's own split column
        assert cfg["split"] == "csv" and cfg["counts"] == {"train": 8, "val": 2, "test": 2}
    if "--target" in kw:  # the CSV's p_<class> columns, Abstract's votes: the target
        test = json.loads((out / "test.json").read_text())
        assert set(test["ldl"]) == {"chebyshev", "clark", "canberra", "kl", "cosine",
                                    "intersection"}


def test_the_option_definitions_are_featx_extracts():
    from finetune.cli import cv

    def described(cmd):
        return {p.name: (p.opts, getattr(p.type, "choices", None), p.help)
                for p in cmd.params if p.name in ("fmt", "conflicts", "label", "agree", "task")}

    featx = described(featx_main.commands["extract"])
    assert len(featx) == 5
    assert described(main.commands["run"]) == featx == described(cv)
    assert described(main.commands["eval"]).keys() == featx.keys()


def test_a_map_task_is_recorded_by_content_and_resume_refuses_changes(four, tmp_path):
    task = tmp_path / "map.csv"
    task.write_text("class,sentiment\namusement,positive\nawe,positive\nanger,negative\n"
                    "fear,negative\n")
    out = tmp_path / "run"
    args = ["run", "resnet_fc", "--data", four, "--epochs", "1", "--steps-per-epoch", "1",
            "--split", "50/25/25", "--out", out, *TINY]
    ok(invoke(*args, "--task", task))
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["classes"] == ["negative", "positive"]
    assert cfg["data_options"]["task"]["map"] == "map.csv"
    # the task, reader options (even ones this layout ignores): each a change
    for change in (["--task", "sentiment"], ["--task", task, "--label", "dominant"],
                   ["--task", task, "--conflicts", "drop"]):
        res = invoke(*args, "--resume", *change)
        assert res.exit_code != 0 and len(res.output.strip().splitlines()) == 1, res.output
        assert "different settings" in res.output, res.output
    task.write_text(task.read_text().replace("awe,positive", "awe,negative"))
    res = invoke(*args, "--resume", "--task", task)
    assert res.exit_code != 0 and "data_options" in res.output


REFUSALS = [
    (["run", "resnet_fc", "--split", "kfold:3:3"], "F in 0..K-1"),
    (["run", "resnet_fc", "--split", "kfold:3"], "finetune cv"),
    (["cv", "resnet_fc", "--split", "kfold:3:1"], "every round of kfold:K"),
    (["cv", "resnet_fc", "--split", "60/20/20"], "every round of kfold:K"),
    (["run", "resnet_fc", "--target", "distribution"], "no label distributions"),
    (["cv", "resnet_fc", "--split", "kfold:3", "--target", "distribution"],
     "no label distributions"),
    (["run", "resnet_fc", "--task", "nothing.csv"], "nothing.csv"),
    (["run", "resnet_fc", "--format", "emotion6"], "ground_truth.txt"),
]


@pytest.mark.parametrize("args,message", REFUSALS)
def test_impossible_combinations_refuse_in_one_line_before_training(args, message, four,
                                                                     tmp_path):
    out = tmp_path / "out"
    res = invoke(*args, "--data", four, "--out", out, *TINY)
    assert res.exit_code != 0
    assert len(res.output.strip().splitlines()) == 1 or "Usage" in res.output, res.output
    assert message in res.output, res.output
    assert not list(out.rglob("config.json"))


def test_cv_runs_every_round_and_pools_them_as_classify_does(four, tmp_path):
    out = tmp_path / "cv"
    args = ["cv", "resnet_fc", "--data", four, "--split", "kfold:3", "--epochs", "1",
            "--steps-per-epoch", "1", "--out", out, *TINY]
    ok(invoke(*args))
    rows = json.loads((out / "cv.json").read_text())["rows"]
    assert [r["fold"] for r in rows] == [0, 1, 2, "all"]
    coll = load_collection(four, "kfold:3", 0)
    tested, true, pred, val_true, val_pred = [], [], [], [], []
    for f in range(3):
        p = preds(out / f"fold-{f}")
        # each round tests on featx's fold F (the split classify --split kfold:3 draws too)
        assert sorted(p["paths"]) == sorted(np.asarray(coll.paths)[coll.fold == f].tolist())
        fold_pred = np.argmax(p["proba"], axis=1)
        assert rows[f]["test"] == evaluate(p["true"], fold_pred, coll.classes)
        tested += p["paths"]
        true += p["true"]
        pred += fold_pred.tolist()
        v = preds(out / f"fold-{f}", "val")
        val_true += v["true"]
        val_pred += np.argmax(v["proba"], axis=1).tolist()
    assert sorted(tested) == sorted(coll.paths)  # every image tested exactly once
    summary = rows[-1]
    assert summary["test"] == evaluate(true, pred, coll.classes)
    assert summary["val"] == evaluate(val_true, val_pred, coll.classes)
    for m in ("accuracy", "macro_recall", "macro_f1"):
        per = [rows[f]["test"][m] for f in range(3)]
        assert summary["kfold"]["test"]["mean"][m] == pytest.approx(np.mean(per))
        assert summary["kfold"]["test"]["std"][m] == pytest.approx(np.std(per, ddof=1))
    assert summary["protocol"] == {"split": "kfold:3", "seed": 0, "task": "emotion"}
    # resumable: without --resume it refuses; with it, a finished round is skipped
    res = invoke(*args)
    assert res.exit_code != 0 and "--resume" in res.output
    kept = (out / "fold-0" / "metrics.jsonl").stat().st_mtime_ns
    shutil.rmtree(out / "fold-2")
    ok(invoke(*args, "--resume"))
    assert (out / "fold-0" / "metrics.jsonl").stat().st_mtime_ns == kept
    again = json.loads((out / "cv.json").read_text())["rows"]
    assert again[0] == rows[0] and (out / "fold-2" / "predictions.json").exists()


def test_kl_loss_is_classify_ldl_kl():
    torch.manual_seed(0)
    logits = torch.randn(6, 5)
    p = torch.softmax(torch.randn(6, 5) * 2, dim=1)
    expected = ldl_measures(p.numpy(), torch.softmax(logits, 1).numpy())["kl"]
    assert float(cross_entropy(logits, p)) == pytest.approx(expected, rel=1e-5)
    hard = torch.tensor([0, 1, 2, 3, 4, 0])
    assert float(cross_entropy(logits, hard)) == pytest.approx(
        float(torch.nn.functional.cross_entropy(logits, hard)))


def test_distribution_target_trains_on_kl_and_reports_classify_ldl(emotion6, tmp_path):
    out = tmp_path / "dist"
    ok(invoke("run", "resnet_fc", "--data", emotion6, "--target", "distribution", "--epochs",
              "3", "--lr", "0.05", "--optimizer", "adam", "--split", "50/25/25", "--out", out,
              *TINY))
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["train_loss"] < lines[0]["train_loss"]  # the KL goes down
    best = torch.load(out / "best.pt", weights_only=True)
    assert best["val_kl"] == min(r["val_kl"] for r in lines)  # the epoch chosen by val KL
    test = json.loads((out / "test.json").read_text())
    p = preds(out)
    coll = load_collection(emotion6, "50/25/25", 0)
    index = {q: i for i, q in enumerate(coll.paths)}
    dist = coll.label_dist[[index[q] for q in p["paths"]]].astype(np.float64)
    proba = np.asarray(p["proba"])
    assert test["ldl"] == ldl_measures(dist, proba)
    assert set(test["ldl"]) == {"chebyshev", "clark", "canberra", "kl", "cosine",
                                "intersection"}
    # top-1 accuracy against the most-voted class, as classify fit --target distribution
    assert test["accuracy"] == evaluate(dist.argmax(1), proba.argmax(1),
                                        coll.classes)["accuracy"]
    res = invoke("eval", out, "--data", emotion6, "--json", tmp_path / "e.json")
    ok(res)
    row = json.loads((tmp_path / "e.json").read_text())["rows"][0]
    assert row["name"] == "finetune:resnet_fc distribution" and row["target"] == "distribution"
    assert row["test"]["ldl"] == pytest.approx(test["ldl"], rel=1e-4)


def test_cross_dataset_rows_match_the_runs_own_predictions(four, tmp_path):
    run = tmp_path / "run"
    ok(invoke("run", "resnet_fc", "--data", four, "--epochs", "1", "--split", "34/33/33",
              "--out", run, *TINY))
    own = preds(run)
    other = tmp_path / "other"
    names = {"amusement": "amused", "anger": "anger", "awe": "wonder", "fear": "fear"}
    for rel in own["paths"]:
        cls, name = rel.split("/")
        (other / names[cls]).mkdir(parents=True, exist_ok=True)
        shutil.copy(four / rel, other / names[cls] / name)
    cmap = tmp_path / "map.csv"
    cmap.write_text("amused,amusement\n")  # wonder stays unmatched
    js = tmp_path / "cross.json"
    ok(invoke("eval", run, "--data", other, "--class-map", cmap, "--json", js))
    row = json.loads(js.read_text())["rows"][0]
    assert row["name"] == "finetune:resnet_fc -> other"
    classes = json.loads((run / "config.json").read_text())["classes"]
    keep = [i for i, q in enumerate(own["paths"]) if not q.startswith("awe/")]
    true = np.asarray(own["true"])[keep]
    pred = np.argmax(own["proba"], axis=1)[keep]
    assert row["test"] == evaluate(true, pred, classes)
    cross = row["cross_dataset"]
    assert cross["unmatched"] == {"wonder": len(own["paths"]) - len(keep)}
    assert cross["n_eval"] == len(keep) and cross["class_map"] == {"amused": "amusement"}
    assert row["val"] == evaluate(preds(run, "val")["true"],
                                  np.argmax(preds(run, "val")["proba"], axis=1), classes)
    # a class map naming a class OTHER lacks, or one on the run's own data: refused
    cmap.write_text("joy,amusement\n")
    res = invoke("eval", run, "--data", other, "--class-map", cmap)
    assert res.exit_code != 0 and "'joy' is not a class of" in res.output
    res = invoke("eval", run, "--data", four, "--class-map", cmap)
    assert res.exit_code != 0 and "run's own images" in res.output
    res = invoke("eval", run, "--data", four, "--split", "80/10/10")
    assert res.exit_code != 0 and "differ from the run's" in res.output
    res = invoke("eval", run, "--data", other, "--split", "50/25/25")
    assert res.exit_code != 0 and "--split goes with the run's own DATA" in res.output
    # a run folder from before data_options resumes with featx's defaults, and only with them
    cfg_path = run / "config.json"
    old = json.loads(cfg_path.read_text())
    del old["data_options"], old["target"]
    cfg_path.write_text(json.dumps(old))
    args = ["run", "resnet_fc", "--data", four, "--epochs", "1", "--split", "34/33/33",
            "--out", run, "--resume", *TINY]
    res = invoke(*args, "--conflicts", "drop")
    assert res.exit_code != 0 and "data_options" in res.output
    ok(invoke(*args))


def test_sentiment_on_both_sides(four, tmp_path):
    run = tmp_path / "run"
    ok(invoke("run", "resnet_fc", "--data", four, "--task", "sentiment", "--epochs", "1",
              "--steps-per-epoch", "1", "--split", "34/33/33", "--out", run, *TINY))
    other = generate_images(tmp_path / "other", n_per_class=2, size=36, seed=5,
                            classes=("contentment", "sadness", "disgust"))
    js = tmp_path / "s.json"
    ok(invoke("eval", run, "--data", other, "--task", "sentiment", "--json", js))
    row = json.loads(js.read_text())["rows"][0]
    assert row["test"]["n"] == 6 and list(row["test"]["per_class_recall"]) == ["negative",
                                                                              "positive"]
    assert row["protocol"]["task"] == "sentiment" and row["cross_dataset"]["unmatched"] == {}


SHARED = Path(__file__).resolve().parents[2].parent / "shared"
MOBILENET = SHARED / "weights" / "mobilenet_v2-imagenet.pth"
PHOTOS = {"anger": "chelsea", "disgust": "coffee", "fear": "rocket", "joy": "astronaut",
          "sadness": "hubble_deep_field", "surprise": "immunohistochemistry"}


def photo_emotion6(root: Path, per_class: int = 6, seed: int = 0) -> Path:
    """Emotion6's layout on scikit-image's photos: a keyword's images are crops of one photo,
    its distributions peaked on the keyword (the rest spread at random)."""
    from PIL import Image
    from skimage import data as skdata

    rng = np.random.default_rng(seed)
    rows = []
    for k, (kw, name) in enumerate(PHOTOS.items()):
        img = Image.fromarray(getattr(skdata, name)()).convert("RGB")
        w, h = img.size
        for i in range(per_class):
            s = rng.uniform(0.6, 0.9)
            cw, ch = int(w * s), int(h * s)
            x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            rel = f"{kw}/{i}.jpg"
            (root / "images" / kw).mkdir(parents=True, exist_ok=True)
            img.crop((x, y, x + cw, y + ch)).save(root / "images" / rel, quality=90)
            p = rng.dirichlet(np.ones(7)) * 0.5
            p[k] += 0.5
            p = p.round(4)
            p[k] += 1 - p.sum()
            rows.append((rel, p.tolist()))
    lines = [lay.EMOTION6_HEADER] + ["\t".join([rel, "5.0", "5.0"] + [f"{x:.4f}" for x in p])
                                     for rel, p in rows]
    (root / "ground_truth.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.mark.skipif(not MOBILENET.is_file(), reason=f"{MOBILENET} absent (../shared not here)")
def test_real_probe_on_distributions_beside_classify_on_the_same_split(tmp_path):
    from classify.cli import main as classify_main
    from featx.cache import Cache

    data = photo_emotion6(tmp_path / "e6")
    protocol = ["--split", "50/25/25", "--seed", "0", "--workers", "0", "--quiet"]
    run = tmp_path / "probe"
    ok(invoke("run", "probe", "--data", data, "--backbone", "mobilenet_v2", "--weights",
              MOBILENET, "--target", "distribution", "--batch-size", "8", "--epochs", "4",
              "--lr", "0.001", "--out", run, *protocol))
    test = json.loads((run / "test.json").read_text())
    assert set(test["ldl"]) == {"chebyshev", "clark", "canberra", "kl", "cosine",
                                "intersection"}
    assert all(np.isfinite(v) for v in test["ldl"].values())
    p = preds(run)
    uniform = ldl_measures(np.asarray(p["dist"]), np.full(np.shape(p["proba"]), 1 / 6))
    assert test["ldl"]["kl"] < uniform["kl"]  # real features predict the distributions
    cache = tmp_path / "mnv2.h5"
    res = CliRunner().invoke(featx_main, ["extract", str(data), "--backbone", "mobilenet_v2",
                                          "--weights", str(MOBILENET), "--layers", "L4",
                                          "--device", "cpu", "--out", str(cache), *protocol])
    assert res.exit_code == 0, res.output
    with Cache(cache) as c:
        cached_test = sorted(q for q, s in zip(c.paths, c.split.tolist()) if s == 2)
    assert cached_test == sorted(p["paths"])  # the same split: the same test images
    js = tmp_path / "cached.json"
    res = CliRunner().invoke(classify_main, ["fit", str(cache), "--levels", "L4", "--target",
                                             "distribution", "--json", str(js), "--quiet"])
    assert res.exit_code == 0, res.output
    row = json.loads(js.read_text())["rows"][0]
    assert set(row["test"]["ldl"]) == set(test["ldl"]) and row["test"]["n"] == test["n"]
    assert row["protocol"]["split"] == json.loads((run / "config.json").read_text())["split"]
