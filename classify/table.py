"""`classify table`: rows from any evaluating command's `--json`, `finetune eval --json` and
finetune run folders (their test.json) gathered into one table. Reads JSON only: no torch."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from featx.errors import FeatxError

TEST_FILES = {"test.json": ("best.pt", "val_", ""), "test_ema.json": ("best_ema.pt", "val_ema_",
                                                                      " EMA")}


def run_protocol(config: dict) -> dict:
    """A finetune run's protocol (from its config.json) in the shape classify rows record."""
    task = (config.get("data_options") or {}).get("task", "emotion")
    return {"split": str(config.get("split", "")), "seed": int(config.get("seed", 0)),
            "task": task if isinstance(task, str) else f"map:{task.get('map')}"}


def finetune_row(config: dict) -> dict:
    """The row keys a finetune run shares with classify rows, but its metrics."""
    rec = config.get("recipe", {})
    return {"name": f"finetune:{rec.get('name', '?')}", "levels": list(rec.get("levels", [])),
            "model": f"{rec.get('name', '?')}/{rec.get('backbone', '?')}",
            "weighted": rec.get("sampler") == "weighted", "protocol": run_protocol(config)}


def gather(paths: Iterable[str]) -> list[dict]:
    """Every row of every file (a run folder stands for its test.json), each tagged with
    `source`, the file it came from."""
    rows = []
    for path in paths:
        p = Path(path)
        if p.is_dir():
            p = p / "test.json"
        for r in _rows_of(p):
            r.setdefault("source", _source(p))
            rows.append(r)
    if not rows:
        raise FeatxError("classify table: the files hold no rows")
    return rows


def protocols(rows: list[dict]) -> list[str]:
    """The distinct protocols of `rows`, as text (one: every row was evaluated alike)."""
    seen = []
    for r in rows:
        text = protocol_text(r)
        if text not in seen:
            seen.append(text)
    return seen


def protocol_text(row: dict) -> str:
    p = row.get("protocol") or {}
    if not p:
        return "?"
    return f"{p.get('split', '?')} seed {p.get('seed', '?')} {p.get('task', 'emotion')}"


def _source(p: Path) -> str:
    return f"{p.parent.name}/{p.name}" if p.name in TEST_FILES else p.name


def _read(p: Path):
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FeatxError(f"{p}: no such file (give --json files of classify or finetune eval, "
                         f"or finetune run folders)") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise FeatxError(f"{p}: not readable JSON ({e})") from None


def _is_metrics(doc) -> bool:
    return isinstance(doc, dict) and {"accuracy", "confusion", "n"} <= set(doc)


def _rows_of(p: Path) -> list[dict]:
    doc = _read(p)
    if isinstance(doc, dict) and isinstance(doc.get("rows"), list):
        for i, r in enumerate(doc["rows"]):
            if not (isinstance(r, dict) and "name" in r and _is_metrics(r.get("test"))):
                raise FeatxError(f"{p}: row {i + 1} has no name or no test metrics")
        return doc["rows"]
    if _is_metrics(doc):
        return [_test_json_row(p, doc)]
    raise FeatxError(f"{p}: neither a {{\"rows\": [...]}} document (classify --json, finetune "
                     f"eval --json) nor a finetune run's test.json")


def _test_json_row(p: Path, test: dict) -> dict:
    """A run folder's test.json (SPEC's M alone) as a row: names from config.json beside it,
    val from metrics.jsonl's epoch whose weights the test used (the first best val macro
    recall; only accuracy and macro recall are logged per epoch)."""
    if p.name not in TEST_FILES:
        raise FeatxError(f"{p}: bare metrics are read as a finetune run's test.json or "
                         f"test_ema.json only")
    config = _read(p.parent / "config.json") if (p.parent / "config.json").exists() else None
    if not isinstance(config, dict):
        raise FeatxError(f"{p}: no config.json beside it; give a finetune run folder's "
                         f"test.json")
    checkpoint, prefix, suffix = TEST_FILES[p.name]
    row = finetune_row(config)
    row["name"] += suffix
    row.update(checkpoint=str(p.parent / checkpoint), val=_best_val(p.parent, prefix, config),
               test=test, data=config.get("data"))
    return row


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSON-lines file such as metrics.jsonl (a line cut short by a kill is
    skipped; no file: none)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def _best_val(run: Path, prefix: str, config: dict) -> dict | None:
    best = None
    for rec in read_jsonl(run / "metrics.jsonl"):
        mrec = rec.get(f"{prefix}macro_recall")
        if mrec is not None and (best is None or mrec > best[f"{prefix}macro_recall"]):
            best = rec
    if best is None:
        return None
    return {"accuracy": best[f"{prefix}accuracy"], "macro_recall": best[f"{prefix}macro_recall"],
            "macro_f1": None, "n": config.get("counts", {}).get("val"),
            "epoch": best.get("epoch"), "stage": best.get("stage")}
