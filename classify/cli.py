"""The `classify` command line: fit, stack, ablate, predict. Heavy imports happen inside the
commands, so `classify --help` loads neither torch nor scikit-learn."""

from __future__ import annotations

import os
import re
from pathlib import Path

import click

from classify.models import MODELS
from classify.tracking import tracked
from featx.errors import FeatxError, one_line_errors
from featx.levels import parse_levels

META_CHOICES = ("weighted", "logreg", "lgbm")  # classify.stacking.META_MODELS, without sklearn


def _levels(ctx, param, value: str) -> list[str] | str:
    if ":" in value:  # ALIAS:LEVEL items of several caches: classify.fusion parses them
        return value
    try:
        return parse_levels(value)
    except FeatxError as e:
        raise click.BadParameter(str(e)) from None


_CACHE = click.argument("cache", type=click.Path(dir_okay=False))
_CACHES = click.argument("caches", nargs=-1, required=True, type=click.Path(dir_okay=False))
_JSON = click.option("--json", "json_path", type=click.Path(dir_okay=False),
                     help="Write the {\"rows\": [...]} document here (docs/rows.md).")
_REPORT = click.option("--report", "report_dir", type=click.Path(file_okay=False),
                       help="Write confusion / per-class recall PNGs and an HTML page here.")
_QUIET = click.option("--quiet", is_flag=True, help="No progress bars.")
_SEED = click.option("--seed", type=int, default=None,
                     help="Seed of a re-split's folds and of the models (default: the seed "
                          "the cache's split was made with).")
_JOBS = click.option("--jobs", type=int, default=None,
                     help="Parallel workers (default: one per CPU core).")
_SPLIT = click.option("--split", default=None,
                      help="Re-split the cache's images (no re-extraction): 80/5/15, 90/5/5, "
                           "kfold:K (a summary row: pooled predictions, folds' mean and std; "
                           "--folds-detail for each fold's), kfold:K:F, official. "
                           "Default: the cache's own split.")
_TASK = click.option("--task", default=None,
                     help="emotion, sentiment (the 8 emotions' positive/negative map) or a map "
                          "file class,sentiment (default: the task the cache was extracted "
                          "with).")
_DATA = click.option("--data", type=click.Path(exists=True),
                      help="The image folder (or CSV) the cache was extracted from, for the "
                           "--report gallery (default: the folder the cache records).")
_FOLDS_DETAIL = click.option("--folds-detail", is_flag=True,
                             help="Under k-fold, also show each fold's row in the table and "
                                  "report (the JSON always holds them).")
_SHOTS = click.option("--shots", default=None,
                       help="Few-shot protocol: K[,K...] training images a class, drawn per "
                            "trial (val and test unchanged); rows per trial and a summary per K "
                            "with a t-interval over trials.")
_TRIALS = click.option("--trials", type=int, default=5, show_default=True,
                       help="With --shots: draws of the training images per K.")
_WEIGHTED = click.option("--weighted", is_flag=True,
                         help="Class-balanced training (weights inversely proportional to "
                              "class frequency).")


def _emit(results, classes, json_path, report_dir, title: str, evaluated=None,
          quiet: bool = False, more=(), folds_detail: bool = False, pooled: int = 0) -> None:
    """Table, --json and --report; `evaluated()` gives the gallery's images (None: none),
    pooled from `pooled` k-fold rounds when that is more than one; `more` further galleries
    as (page name, title, evaluated). Tables show k-fold summaries (each fold's row with
    `folds_detail`); the JSON holds every row."""
    from classify.atomic import write_json
    from classify.report import level_weights_lines, shown_rows, text_table, write_report
    from classify.rows import rows_document

    doc = rows_document(results)
    click.get_current_context().meta["classify.rows"] = doc  # for --track
    shown = shown_rows(doc["rows"], folds_detail)
    click.echo(text_table(shown))
    for line in level_weights_lines(shown):
        click.echo(line)
    if json_path:
        write_json(json_path, doc)
    if report_dir:
        gallery = None
        if evaluated is not None:
            from classify.gallery import write_gallery

            what = (f"error analysis of the pooled test predictions of {pooled} folds (every "
                    f"image once, by the fold model that did not train on it)" if pooled > 1
                    else "error analysis")
            gallery = write_gallery(report_dir, evaluated(), title=f"{title}: {what}",
                                    quiet=quiet)
        extra = []
        if more:
            from classify.gallery import write_gallery

            extra = [(write_gallery(report_dir, ev(), title=t, quiet=quiet, name=name), t)
                     for name, t, ev in more]
        page = write_report(report_dir, shown, classes, title=title, gallery=gallery,
                            more_galleries=extra)
        click.echo(f"report: {page}" + (f", gallery: {gallery}" if gallery else "")
                   + "".join(f", {g}" for g, _ in extra), err=True)


def _images_found(cache, data, report_dir) -> bool:
    """Whether `--report` can add a gallery: CACHE's images are found (from --data or the
    folder the cache records); a bad --data is an error, unknown images only a note."""
    if not report_dir:
        return False
    from classify.gallery import data_root
    from featx.cache import Cache

    with Cache(cache) as c:
        attrs = c.attrs
    try:
        data_root(attrs, data, cache)
    except FeatxError as e:
        if data is not None:
            raise
        click.echo(f"note: no error-analysis gallery: {e}", err=True)
        return False
    return True


def _check_one_model(cache, split, model_out) -> None:
    """`--out` saves one model: refused (before any training) for a k-fold protocol's rounds."""
    from featx.cache import Cache
    from featx.splits import has_rounds

    if not model_out:
        return
    with Cache(cache) as c:
        spec = split or str(c.attrs.get("split_spec", ""))
    if has_rounds(spec):
        raise FeatxError(f"--out with --split {spec}: k-fold trains one model per fold; "
                         f"save one with a ratio split or kfold:K:F")


def _summary_name(trained) -> str:
    """The row a run is about: the summary under k-fold, not its first fold."""
    last = trained.pooled or trained.recipe.get("kind") == "stack"  # summaries come last
    return trained.results[-1 if last else 0].row["name"]


def _gallery_of(trained, data):
    from classify.gallery import evaluated_from_trained

    return lambda: evaluated_from_trained(trained, data)


def _cross_galleries(trained, report_dir, class_map, task) -> list:
    """For --report: the gallery of each cross-dataset row, on the other cache's images
    (found where that cache records them; otherwise a note)."""
    from classify.gallery import data_root, evaluated_cross
    from classify.protocol import class_map_file
    from featx.cache import Cache

    out = []
    for r in trained.results if report_dir else ():
        other = (r.row.get("cross_dataset") or {}).get("eval")
        if not other:
            continue
        with Cache(other) as c:
            attrs = dict(c.attrs)
        try:
            data_root(attrs, None, other)
        except FeatxError as e:
            click.echo(f"note: no gallery of the cross-dataset row: {e}", err=True)
            continue
        name = "gallery_" + re.sub(r"[^A-Za-z0-9_.-]", "_", Path(other).stem)
        out.append((name, f"{r.row['name']}: error analysis on {Path(other).name}'s images",
                    lambda o=other: evaluated_cross(trained, o, class_map_file(class_map),
                                                    task)))
    return out


def _image_file(target: Path) -> bool:
    """TARGET is one image file (by its extension); a file that is neither that nor HDF5 is a
    one-line error saying what predict takes."""
    import h5py

    from featx.dataset import IMAGE_EXTENSIONS, is_image

    if not target.is_file():
        return False
    if is_image(target.name):
        return True
    if not h5py.is_hdf5(target):
        raise FeatxError(f"{target}: neither a feature cache (HDF5) nor an image file ("
                         f"{', '.join(sorted(IMAGE_EXTENSIONS))}): give a cache, a folder of "
                         f"images or one image")
    return False


def _check_outputs(files: dict[str, str | None], folders: dict[str, str | None]) -> None:
    from classify.atomic import check_writable

    for is_folder, paths in ((False, files), (True, folders)):
        for flag, path in paths.items():
            if path:
                check_writable(path, flag, folder=is_folder)


def _fused(caches: tuple[str, ...], levels):
    """(what run_fit / run_stack take as the cache, its levels): one cache as it is, several
    as a classify.fusion.Fused of the same images."""
    if len(caches) == 1:
        if isinstance(levels, str):
            raise FeatxError(f"--levels {levels}: ALIAS:LEVEL names one of several caches; "
                             f"with one cache give the levels alone")
        return caches[0], levels
    from classify.fusion import Fused

    fused = Fused(caches, levels if isinstance(levels, str) else ",".join(levels))
    return fused, fused.levels


def _shots(spec: str | None, model_out: str | None, eval_cache: str | None) -> list[int]:
    from classify.fewshot import parse_shots

    shots = parse_shots(spec)
    if shots and model_out:
        raise FeatxError("--out with --shots: every trial trains its own model; save one "
                         "without --shots")
    if shots and eval_cache:
        raise FeatxError("--eval with --shots: evaluate across datasets without --shots")
    return shots


def _jobs(jobs: int | None) -> int:
    if jobs is not None and jobs < 1:
        raise FeatxError(f"--jobs {jobs}: give a positive number")
    return jobs or os.cpu_count() or 1


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Classical models, stacking and ablation grids on featx feature caches.

    Reference: docs/ in the featx repository (rows.md: the tables and --json documents;
    model-files.md; cache.md)."""


@main.command()
@_CACHES
@click.option("--levels", default="L4", show_default=True, callback=_levels,
              help="Levels side by side: L4, L3,L4, L0-L4. Several caches of the same images "
                   "(fusion): the levels of each, or ALIAS:LEVELS per cache, e.g. "
                   "clip:emb,resnet101:L3-L4 (alias: the backbone's name or the file's stem).")
@click.option("--model", type=click.Choice(list(MODELS)), default="logreg", show_default=True)
@_WEIGHTED
@click.option("--cv", type=int, default=None,
              help="Choose hyperparameters by K-fold CV on train instead of on val.")
@click.option("--out", "model_out", type=click.Path(dir_okay=False), help="Save the model here.")
@_SPLIT
@_TASK
@click.option("--target", type=click.Choice(["label", "distribution"]), default="label",
              show_default=True, help="distribution: soft-label logistic regression on the "
              "cache's /label_dist (minimising KL), reported with the six LDL measures.")
@click.option("--eval", "eval_cache", type=click.Path(dir_okay=False),
              help="Also evaluate on every valid image of this other cache (cross-dataset; "
                   "same feature settings required).")
@click.option("--class-map", type=click.Path(dir_okay=False),
              help="For --eval: other_class,train_class per line, for differing names.")
@_SHOTS
@_TRIALS
@_FOLDS_DETAIL
@_JSON
@_REPORT
@_DATA
@_QUIET
@_SEED
@_JOBS
@one_line_errors
@tracked("fit")
def fit(caches, levels, model, weighted, cv, model_out, split, task, target, eval_cache,
        class_map, shots, trials, folds_detail, data, json_path, report_dir, quiet, seed, jobs):
    """Train one model on CACHES' LEVELS (several caches of the same images: their levels side
    by side); evaluate on val and test."""
    from classify.persist import save_model
    from classify.protocol import class_map_file
    from classify.training import run_fit

    if cv is not None and cv < 2:
        raise FeatxError(f"--cv {cv}: give K >= 2 folds")
    if class_map and not eval_cache:
        raise FeatxError("--class-map goes with --eval OTHER_CACHE")
    from classify.models import ZERO_SHOT_MODELS

    if model in ZERO_SHOT_MODELS and click.get_current_context().get_parameter_source(
            "levels") == click.core.ParameterSource.DEFAULT:
        levels = ["emb"]  # what these models work on
    cache, levels = _fused(caches, levels)
    if eval_cache and len(caches) > 1:
        raise FeatxError("--eval with several caches: cross-dataset evaluation takes one cache")
    _check_one_model(caches[0], split, model_out)
    _check_outputs({"--out": model_out, "--json": json_path}, {"--report": report_dir})
    gallery = _images_found(caches[0], data, report_dir)
    shots = _shots(shots, model_out, eval_cache)
    if shots:
        from classify.fewshot import fewshot_trained

        trained = fewshot_trained("fit", cache, levels, shots, trials, seed, split, task,
                                  model=model, weighted=weighted, cv=cv, jobs=_jobs(jobs),
                                  quiet=quiet, target=target)
    else:
        trained = run_fit(cache, levels, model, weighted, cv=cv, seed=seed, jobs=_jobs(jobs),
                          quiet=quiet, split=split, task=task, target=target,
                          eval_cache=eval_cache, class_map=class_map_file(class_map))
    _emit(trained.results, trained.data.classes, json_path, report_dir,
          f"classify fit: {_summary_name(trained)}",
          _gallery_of(trained, data) if gallery else None, quiet,
          _cross_galleries(trained, report_dir, class_map, task), folds_detail,
          len(trained.tested))
    if model_out:
        click.echo(f"model: {save_model(model_out, trained)}", err=True)


@main.command()
@_CACHES
@click.option("--levels", default="L0-L4", show_default=True, callback=_levels,
              help="As fit's: one base model per (cache, level).")
@click.option("--base", type=click.Choice(list(MODELS)), default="logreg", show_default=True,
              help="Per-level base model (its default hyperparameters).")
@click.option("--meta", type=click.Choice(META_CHOICES), default="weighted", show_default=True,
              help="weighted = learned non-negative weighted average of level probabilities.")
@_WEIGHTED
@click.option("--folds", type=int, default=5, show_default=True,
              help="Out-of-fold probabilities from K stratified folds.")
@click.option("--out", "model_out", type=click.Path(dir_okay=False), help="Save the model here.")
@_SPLIT
@_TASK
@_SHOTS
@_TRIALS
@_FOLDS_DETAIL
@_JSON
@_REPORT
@_DATA
@_QUIET
@_SEED
@_JOBS
@one_line_errors
@tracked("stack")
def stack(caches, levels, base, meta, weighted, folds, model_out, split, task, shots, trials,
          folds_detail, data, json_path, report_dir, quiet, seed, jobs):
    """Stack per-level models of CACHES (several caches of the same images: one per (cache,
    level)); rows for each level and for the stack."""
    from classify.persist import save_model
    from classify.training import run_stack

    if folds < 2:
        raise FeatxError(f"--folds {folds}: give K >= 2 folds")
    cache, levels = _fused(caches, levels)
    _check_one_model(caches[0], split, model_out)
    _check_outputs({"--out": model_out, "--json": json_path}, {"--report": report_dir})
    gallery = _images_found(caches[0], data, report_dir)
    shots = _shots(shots, model_out, None)
    if shots:
        from classify.fewshot import fewshot_trained

        trained = fewshot_trained("stack", cache, levels, shots, trials, seed, split, task,
                                  base=base, meta=meta, weighted=weighted, folds=folds,
                                  jobs=_jobs(jobs), quiet=quiet)
    else:
        trained = run_stack(cache, levels, base, meta, weighted, folds=folds, seed=seed,
                            jobs=_jobs(jobs), quiet=quiet, split=split, task=task)
    _emit(trained.results, trained.data.classes, json_path, report_dir,
          f"classify stack: {_summary_name(trained)}",
          _gallery_of(trained, data) if gallery else None, quiet, folds_detail=folds_detail,
          pooled=len(trained.tested))
    if model_out:
        click.echo(f"model: {save_model(model_out, trained)}", err=True)


@main.command()
@click.argument("caches", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--grid", default="default", show_default=True,
              help="default, quick, fusion (several caches of the same images: what each "
                   "backbone adds), or a JSON file listing rows.")
@click.option("--out", "out_dir", default="cache/ablation", show_default=True,
              type=click.Path(file_okay=False),
              help="Table (ablation.md/.csv/.json) and cached rows go here.")
@_SPLIT
@_TASK
@_FOLDS_DETAIL
@_SHOTS
@_TRIALS
@_JSON
@_REPORT
@_QUIET
@_SEED
@_JOBS
@click.option("--backend", default="local", show_default=True, metavar="local|dask[:ADDRESS]",
              help="Where the rows run: local processes (--jobs), or tasks on a Dask cluster: "
                   "a LocalCluster of --jobs workers, or the scheduler at ADDRESS (e.g. a "
                   "dask-jobqueue SLURMCluster's; caches and --out on a shared filesystem).")
@one_line_errors
@tracked("ablate")
def ablate(caches, grid, out_dir, split, task, folds_detail, shots, trials, json_path,
           report_dir, quiet, seed, jobs, backend):
    """Run an ablation grid over one or more CACHES; one table with McNemar's test (accuracy)
    and a paired bootstrap test (macro recall) of every row against the baseline."""
    from pathlib import Path

    from classify.ablate import run_grid
    from classify.atomic import write_json, write_text
    from classify.report import (csv_table, level_weights_lines, markdown_table, shown_rows,
                                 text_table, write_report)
    from classify.rows import rows_document

    _check_outputs({"--json": json_path}, {"--out": out_dir, "--report": report_dir})
    run = run_grid(list(caches), grid, out_dir, jobs=_jobs(jobs), seed=seed, quiet=quiet,
                   split=split, task=task, shots=_shots(shots, None, None), trials=trials,
                   backend=backend)
    doc = rows_document(run.results)
    shown = shown_rows(doc["rows"], folds_detail)
    out = Path(out_dir)
    write_text(out / "ablation.md", markdown_table(shown))
    write_text(out / "ablation.csv", csv_table(doc["rows"]))
    write_json(out / "ablation.json", doc)
    click.get_current_context().meta.update({"classify.rows": doc, "classify.files": [
        out / "ablation.md", out / "ablation.csv"]})  # for --track
    if json_path:
        write_json(json_path, doc)
    click.echo(text_table(shown))
    for line in level_weights_lines(shown):
        click.echo(line)
    click.echo(f"{run.computed} rows computed, {run.reused} reused; table in "
               f"{out / 'ablation.md'}", err=True)
    if report_dir:
        classes = list(shown[0]["test"]["per_class_recall"])  # after --task
        click.echo(f"report: {write_report(report_dir, shown, classes, 'classify ablate')}",
                   err=True)


@main.command()
@_CACHE
@_SPLIT
@_TASK
@_JSON
@_REPORT
@_SEED
@one_line_errors
def zeroshot(cache, split, task, json_path, report_dir, seed):
    """CLIP zero-shot row of CACHE: its emb level against the stored prompt embeddings, on the
    test images of the protocol (under kfold:K each fold's and the pooled row)."""
    from classify.zeroshot import zeroshot_results

    _check_outputs({"--json": json_path}, {"--report": report_dir})
    results = zeroshot_results(cache, seed=seed, split=split, task=task)
    classes = list(results[-1].row["test"]["per_class_recall"])  # after --task
    _emit(results, classes, json_path, report_dir, "classify zeroshot")


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--md", "fmt", flag_value="md", help="Markdown table.")
@click.option("--csv", "fmt", flag_value="csv", help="CSV, one line a row.")
@click.option("--html", "fmt", flag_value="html", help="An HTML page holding the table.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False),
              help="Write the table here instead of printing it.")
@_FOLDS_DETAIL
@one_line_errors
def table(files, fmt, out_path, folds_detail):
    """One table of the rows in FILES: --json files of fit, stack, ablate, zeroshot, predict and
    finetune eval, and finetune run folders (or their test.json), with the same columns and
    95% intervals. A file column appears when the rows come from several files, a protocol
    column when they were not evaluated on the same split, seed and task."""
    from classify.report import csv_table, html_page, markdown_table, shown_rows, text_table
    from classify.table import gather, protocols

    rows = shown_rows(gather(files), folds_detail)
    render = {"md": markdown_table, "csv": csv_table, "html": html_page}.get(fmt, text_table)
    text = render(rows)
    if out_path:
        from classify.atomic import write_text

        _check_outputs({"--out": out_path}, {})
        write_text(out_path, text if text.endswith("\n") else text + "\n")
    else:
        click.echo(text.rstrip("\n"))
    seen = protocols(rows)
    if len(seen) > 1:
        click.echo(f"note: the rows were evaluated under {len(seen)} protocols ("
                   f"{'; '.join(seen)}): compare rows of the same protocol", err=True)


@main.command()
@click.argument("old", type=click.Path(dir_okay=False))
@click.argument("new", type=click.Path(dir_okay=False))
@click.option("--trust", is_flag=True,
              help="Confirm that OLD comes from you or someone you trust: converting opens it "
                   "with pickle, which can run any code it holds.")
@one_line_errors
def convert(old, new, trust):
    """Rewrite an old (joblib) model file OLD in the current format, which opens without running
    code, as NEW. The only command that ever opens a pickle."""
    from classify.persist import convert_legacy

    if not trust:
        raise FeatxError(f"{old}: converting opens the file with pickle, which runs any code "
                         f"the file holds; if you made it or trust who did, pass --trust")
    _check_outputs({"NEW": new}, {})
    click.echo(f"model: {convert_legacy(old, new)}", err=True)


@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("target", type=click.Path())
@click.argument("more", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--out", "csv_out", default="predictions.csv", show_default=True,
              type=click.Path(dir_okay=False))
@click.option("--batch-size", default=64, show_default=True,
              help="Images per batch when TARGET is an image folder.")
@click.option("--device", default="auto", show_default=True,
              help="Feature extraction device for an image folder.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False),
              help="Write an error-analysis gallery and the scores of the labelled images "
                   "the model never trained or selected on (a cache's labels under the "
                   "model's task, or a folder's images in class folders) here.")
@_JSON
@_DATA
@_QUIET
@one_line_errors
def predict(model, target, more, csv_out, batch_size, device, report_dir, json_path, data,
            quiet):
    """Class probabilities per image of TARGET (a cache or a folder of images) by MODEL; a
    fused model takes its caches in order: MODEL CACHE_A CACHE_B ..."""
    from pathlib import Path

    from classify.atomic import write_text
    from classify.persist import load_model
    from classify.predict import predict_cache, predict_images, predictions_csv

    _check_outputs({"--out": csv_out, "--json": json_path}, {"--report": report_dir})
    bundle = load_model(model)
    target = Path(target)
    root, escaped, gallery = target, True, bool(report_dir)
    fused = "sources" in bundle or bool(more)  # a fused model (classify.fusion)
    if fused and "sources" not in bundle:
        raise FeatxError(f"{model}: the model was trained on one cache; give one TARGET")
    if fused and target.is_dir() and more:
        raise FeatxError(f"{target}: give a fused model its caches in order "
                         f"({', '.join(s['alias'] for s in bundle['sources'])}), or one image "
                         f"folder (each backbone extracts in turn)")
    if target.is_dir() or _image_file(target):
        preds = predict_images(bundle, target, batch_size=batch_size, device=device, quiet=quiet)
    elif target.exists():
        if report_dir:  # find the images first, not after the predictions
            from featx.cache import Cache

            gallery = _images_found(str(target), data, report_dir)
            if gallery:
                from classify.gallery import data_root

                with Cache(target) as c:
                    root = data_root(c.attrs, data, str(target))
                    escaped = bool(c.attrs.get("path_escapes"))
        if fused:
            from classify.fusion import predict_fused

            preds = predict_fused(bundle, [str(target), *more])
        else:
            preds = predict_cache(bundle, target)
    else:
        raise FeatxError(f"{target}: no such cache file or image folder")
    from classify.predict import scored
    from classify.rowrule import SEEN_MEMBER, seen_mask

    sc = scored(preds, bundle) if report_dir or json_path else None
    if sc is not None and not len(sc.rows):  # refused before anything is written
        raise FeatxError(f"{target}: no image to score: {sc.n_seen} were the model's training "
                         f"or validation rows, {sc.n_unknown} have no true class among its "
                         f"classes ({', '.join(bundle['classes'])}) under its task "
                         f"{(bundle.get('protocol') or {}).get('task', 'emotion')}")
    seen = seen_mask(bundle, preds.paths) if bundle.get(SEEN_MEMBER) is not None else None
    write_text(csv_out, predictions_csv(preds, bundle["classes"], seen))
    failed = sum(1 for e in preds.errors if e)
    click.echo(f"{len(preds.paths)} predictions written to {csv_out}"
               + (f" ({failed} images failed; their rows carry the error)" if failed else ""),
               err=True)
    if target.is_dir() and seen is not None:
        n = int(seen.sum())
        if n:
            click.echo(f"warning: {n} of the {len(preds.paths)} images have the relative paths "
                       f"of {Path(model).name}'s training or validation rows"
                       + (": they are not scored" if sc else ""), err=True)
    if sc is None:
        return
    if sc.n_seen and not target.is_dir():
        click.echo(f"note: {sc.n_seen} labelled rows of {target.name} were "
                   f"{Path(model).name}'s training or validation rows: not scored", err=True)
    _emit_predict(bundle, model, target, preds, sc, json_path, report_dir,
                  (root, escaped) if gallery else None, quiet)


def _emit_predict(bundle, model, target, preds, sc, json_path, report_dir, images, quiet):
    """`classify predict`'s row (the scored images as its test set) and report."""
    from pathlib import Path

    import numpy as np

    from classify.gallery import evaluated_from_predictions
    from classify.rows import make_result

    recipe = bundle.get("recipe", {})
    empty = np.zeros(0, dtype=np.int64)
    classes = list(bundle["classes"])
    res = make_result(f"{Path(model).name} on {target.name} (unseen images)", bundle["levels"],
                      recipe.get("model", "?"), bool(recipe.get("weighted", False)), classes,
                      (empty, empty), (sc.y, preds.proba[sc.rows].argmax(axis=1)),
                      [preds.paths[i] for i in sc.rows], cache=str(target),
                      model_file=str(model), protocol=bundle.get("protocol"),
                      excluded_seen=sc.n_seen, unknown_class=sc.n_unknown)
    evaluated = None
    if images is not None:
        ev = evaluated_from_predictions(preds, classes, sc.rows, sc.y, *images)
        evaluated = lambda: ev  # noqa: E731
    _emit([res], classes, json_path, report_dir, f"classify predict: {res.row['name']}",
          evaluated, quiet)
