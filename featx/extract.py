"""featx extract: a collection -> one HDF5 cache, resumable by chunks and shardable with torchrun.

The run works in `<out>.parts/` (see featx.parts): chunk k holds rows [k*cs, (k+1)*cs) and is
computed in batches that never cross its boundary, so its bytes are the same however often the
run was interrupted and whichever rank computed it. When every chunk is there, rank 0 assembles
them into `--out` (temp file + os.replace) and removes the work folder.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from featx import __version__
from featx.backbones import get_backbone
from featx.cache import Cache, CacheError, CacheMeta, CacheWriter, list_fingerprint
from featx.dataset import Collection, FolderScan, describe_conflicts, load_collection
from featx.errors import FeatxError
from featx.extractor import pooled_dims, resolve_pool
from featx.finite import NonFiniteFeatures
from featx.info import describe_scan
from featx.levels import parse_levels
from featx.lock import OutputLock
from featx.parts import ChunkWriter, Parts, os_error
from featx.pathnames import printable, show
from featx.pooling import ALL_POOLS
from featx.preprocess import preprocessing_id
from featx.progress import Progress
from featx.settings import difference, feature_fingerprint, from_cache_attrs, full_fingerprint
from featx.tasks import task_name
from featx.weights import check_weights, weights_identity

Log = Callable[[str], None]
MIN_IMAGE_SIZE = 32  # five stride-2 stages: smaller inputs vanish before L4


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class ExtractConfig:
    data: Path
    backbone: str = "resnet101"
    weights: str = "imagenet"
    layers: str | None = None  # None: every level of the backbone (L0-L4, and emb for CLIP)
    pool: str | None = None  # None: the backbone's default (gap for maps, cls for tokens)
    image_size: int | None = None  # None: the model's own input size
    batch_size: int = 64
    workers: int | None = None
    device: str = "auto"
    dtype: str | None = None  # None: float16 on CUDA, float32 on the CPU
    split: str | None = None  # None: the dataset's official split, else 80/5/15
    seed: int = 0
    format: str | None = None  # None: detected from the layout
    conflicts: str = "keep"
    label: str = "keyword"
    agree: int = 5
    task: str | None = None
    out: Path | None = None
    quiet: bool = False
    chunk_size: int | None = None  # rows per resumable chunk; a multiple of batch_size
    decode: str = "auto"
    prompts: Path | None = None  # CLIP zero-shot templates file (default: featx.zeroshot's)
    fast_decode: bool = False  # JPEG draft decoding: faster, not the same pixels
    hf_split: str | None = None  # --format hf: one split (default: all)
    image_column: str | None = None  # --format hf: default detected
    label_column: str | None = None
    id_column: str | None = None


@dataclass
class ExtractResult:
    out: Path
    status: str  # "written" | "up-to-date" | "shard-done"
    n: int = 0
    n_failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # first few (path, reason)
    duplicates: list[list[str]] = field(default_factory=list)
    conflicts: list[dict] = field(default_factory=list)
    conflict_policy: str = "keep"
    dropped: dict[str, int] = field(default_factory=dict)
    scan: FolderScan | None = None  # entries of a folder DATA that are not used, its links
    seconds: float = 0.0  # the whole command
    loop_seconds: float = 0.0  # decoding + forward + chunk writing of this rank (no setup)


def default_out(data: Path, backbone: str, pool: str) -> Path:
    """cache/<data name>-<backbone>-<pool>.h5 (timm/x -> timm-x, clip/A:t -> clip-A-t)"""
    from featx.datasets.wds import is_pattern

    data = Path(data)
    if is_pattern(data):  # shards-{0000..0099}.tar: named after their folder
        data = data.parent
    name = (data.resolve().name if data.is_dir() else data.stem) or "data"
    backbone = backbone.replace("/", "-").replace(":", "-")
    return Path("cache") / f"{name}-{backbone}-{pool}.h5"


def output_path(cfg: "ExtractConfig") -> Path:
    """`--out`, or the default named after the data, backbone and (resolved) pool."""
    if cfg.out:
        return Path(cfg.out)
    if cfg.pool:
        return default_out(cfg.data, cfg.backbone, cfg.pool)
    bb = get_backbone(cfg.backbone)
    return default_out(cfg.data, cfg.backbone,
                       resolve_pool(bb, parse_levels(cfg.layers or ",".join(bb.levels)), None))


def default_chunk_size(batch_size: int, device_type: str) -> int:
    """About 256 images on the CPU (~30 s of resnet101 lost at worst), 2048 on a GPU."""
    target = 2048 if device_type == "cuda" else 256
    return batch_size * max(1, math.ceil(target / batch_size))


def _check_options(cfg: ExtractConfig) -> None:
    if cfg.image_size is not None and cfg.image_size < MIN_IMAGE_SIZE:
        raise FeatxError(f"--image-size {cfg.image_size}: must be at least {MIN_IMAGE_SIZE}")
    if cfg.batch_size < 1:
        raise FeatxError(f"--batch-size {cfg.batch_size}: must be at least 1")
    if cfg.workers is not None and cfg.workers < 0:
        raise FeatxError(f"--workers {cfg.workers}: must be 0 or more")
    if cfg.chunk_size is not None and (cfg.chunk_size < cfg.batch_size
                                       or cfg.chunk_size % cfg.batch_size):
        raise FeatxError(f"--chunk-size {cfg.chunk_size}: must be a multiple of --batch-size "
                         f"{cfg.batch_size}")
    if cfg.dtype is not None and cfg.dtype not in ("float16", "float32"):
        raise FeatxError(f"bad --dtype {cfg.dtype!r}: use float16 or float32")
    if cfg.decode not in ("auto", "cpu", "gpu"):
        raise FeatxError(f"bad --decode {cfg.decode!r}: use auto, cpu or gpu")
    if cfg.pool is not None and cfg.pool not in ALL_POOLS:
        raise FeatxError(f"unknown --pool {cfg.pool!r}: choose one of {', '.join(ALL_POOLS)}")


def feature_settings(backbone: str, weights: str, levels: Sequence[str], pool: str,
                     image_size: int, dtype: str, seed: int, preprocessing: str,
                     precision: str) -> dict:
    """The FEATURE_KEYS of featx.settings for one run."""
    bb = get_backbone(backbone)
    # a model whose taps featx changed records the rules' revision, so a cache of the older
    # taps is never resumed or reused as if it were the same
    return {"backbone": f"{backbone} ({bb.taps_rev})" if bb.taps_rev else backbone,
            "weights": weights_identity(bb, weights, seed),
            "layers": list(levels), "pool": pool, "image_size": int(image_size),
            "preprocessing": preprocessing, "precision": precision, "dtype": dtype}


def _check_existing_out(out: Path, settings: dict, fp: str) -> bool:
    """True when `out` already holds this very cache. Refuses to go near anything else there."""
    if not out.exists():
        return False
    try:
        with Cache(out, require_complete=False) as c:
            theirs, complete = c.fingerprint, bool(c.attrs.get("complete", False))
            old = from_cache_attrs(c.attrs)
    except CacheError as e:
        raise FeatxError(f"{out} exists and is not a featx cache ({e}); choose another --out") \
            from None
    if theirs == fp:
        return complete  # an incomplete one with our fingerprint is simply rewritten
    raise FeatxError(f"{out} holds a cache made with other settings (fingerprint {theirs[:12]}, "
                     f"this run {fp[:12]}: {difference(old, settings)}); choose another --out "
                     f"or delete it")


def _check_parts(parts: Parts, settings: dict, fp: str) -> dict | None:
    """The meta of a work folder this run can resume (None if there is none); refuses others."""
    if not parts.exists():
        return None
    meta = parts.read_meta()
    if meta.get("fingerprint") != fp:
        old = meta.get("settings", {})
        # a run of this very model with featx's older taps: no command can finish it now
        retapped = old.get("backbone") != settings["backbone"] and \
            settings["backbone"].startswith(f"{old.get('backbone')} (")
        raise FeatxError(f"{parts.dir} holds an unfinished run with other settings (fingerprint "
                         f"{str(meta.get('fingerprint'))[:12]}, this run {fp[:12]}: "
                         f"{difference(old, settings)}); "
                         + ("it was made with featx's older taps of this model: delete the folder"
                            if retapped else "rerun that command to finish it, or delete the "
                            "folder"))
    return meta


def _choose_decoder(mode: str, device, inside: bool = False, fast: bool = False):
    """`inside`: the images lie inside shards or tables, which only the CPU decoder reads;
    `fast`: --fast-decode."""
    decoder = _decoder(mode, device, inside)
    return decoder.fast() if fast else decoder


def _decoder(mode: str, device, inside: bool):
    from featx.loader import CPU_DECODER
    if mode == "cpu" or (mode == "auto" and (device.type != "cuda" or inside)):
        return CPU_DECODER
    if inside:
        raise FeatxError("--decode gpu reads image files; images inside shards or tables "
                         "(--format hf/webdataset) are decoded on the CPU: use --decode cpu")
    if device.type != "cuda":
        raise FeatxError("--decode gpu needs a CUDA --device")
    from featx.gpu_decode import GPU_DECODER, gpu_decode_works
    if mode == "auto" and not gpu_decode_works(device):
        return CPU_DECODER
    return GPU_DECODER


def _pin(decoder, device) -> bool:
    """Pinned host memory for uint8 batches bound for a GPU (not for nvJPEG's raw bytes)."""
    return device.type == "cuda" and decoder.name == "cpu"


def _precision(device) -> str:
    from featx.engine import autocast_dtype
    amp = autocast_dtype(device)
    return f"{device.type}-{str(amp).removeprefix('torch.')}-autocast" if amp else "float32"


def run_extract(cfg: ExtractConfig, log: Log = _stderr) -> ExtractResult:
    """The whole extract command; every rank of a torchrun job calls it. Rank 0 holds `--out`'s
    lock for the job (featx.lock): one run per output at a time."""
    from featx import distributed

    if not distributed.from_env().is_main:
        return _run_extract(cfg, log)
    _check_options(cfg)
    with OutputLock(output_path(cfg)) as lock:
        if lock.taken_over and not cfg.quiet:
            log(lock.taken_over)
        return _run_extract(cfg, log)


def _run_extract(cfg: ExtractConfig, log: Log) -> ExtractResult:
    from featx import distributed
    from featx.engine import default_dtype, resolve_device

    t0 = time.perf_counter()
    _check_options(cfg)
    world = distributed.from_env()
    device = resolve_device(cfg.device, world.local_rank)
    say = log if (world.is_main and not cfg.quiet) else (lambda msg: None)
    bb = get_backbone(cfg.backbone)
    levels = parse_levels(cfg.layers or ",".join(bb.levels))
    pool = resolve_pool(bb, levels, cfg.pool)
    pp = bb.preprocess(cfg.image_size)
    templates = _templates(cfg, bb)
    dtype = cfg.dtype or default_dtype(device)
    check_weights(bb, cfg.weights)
    coll = collection_for(cfg)
    say(f"dataset      {coll.dataset_format} ({'--format' if cfg.format else 'detected'}) "
        f"from {show(cfg.data)}")
    decoder = _choose_decoder(cfg.decode, device, inside=coll.members is not None,
                              fast=cfg.fast_decode)
    if cfg.split and "/" in cfg.split and coll.split_spec in ("official", "csv"):
        say(f"note: {show(cfg.data)} has its own split ({coll.split_spec}), used as it is; "
            f"`classify --split {cfg.split}` re-splits the cache's images")
    out = output_path(cfg)
    dims = pooled_dims(bb, levels, pool)

    settings = feature_settings(cfg.backbone, cfg.weights, levels, pool, pp.input_size,
                                dtype, cfg.seed, preprocessing_id(decoder.preprocessing, pp),
                                _precision(device))
    feat_fp = feature_fingerprint(settings)
    settings.update(classes=coll.classes, split_spec=coll.split_spec, seed=cfg.seed,
                    files=list_fingerprint(coll.paths, coll.labels,
                                           coll.split if coll.fold is None else coll.fold))
    if templates:
        settings["prompts"] = templates
    fp = full_fingerprint(settings)
    result = ExtractResult(out=out, status="written", n=len(coll), duplicates=coll.duplicates,
                           conflicts=coll.conflicts, conflict_policy=coll.conflict_policy,
                           dropped=coll.dropped, scan=coll.scan)

    # every rank makes the same read-only checks, so all refuse alike without waiting on another
    if _check_existing_out(out, settings, fp):
        say(f"{out} is already complete with these settings (fingerprint {fp[:12]}): nothing "
            f"to do")
        if world.is_main:
            Parts(out).remove()  # a leftover work folder of this very run is of no use now
        return _summarise(result, out, "up-to-date", t0)
    parts = Parts(out)
    meta = _check_parts(parts, settings, fp)
    distributed.init(world, device)
    if meta is None:
        chunk_size = cfg.chunk_size or default_chunk_size(cfg.batch_size, device.type)
        if world.is_main:
            meta = {"fingerprint": fp, "feature_fingerprint": feat_fp, "settings": settings,
                    "n": len(coll), "chunk_size": chunk_size, "batch_size": cfg.batch_size,
                    "dims": dims, "featx": __version__}
            parts.create(meta)
    else:
        chunk_size = int(meta["chunk_size"])
        if meta.get("batch_size") != cfg.batch_size:
            say(f"note: resuming a run started with --batch-size {meta.get('batch_size')} at "
                f"--batch-size {cfg.batch_size}; rows may differ from a one-go run in the last "
                f"bits")
    world.barrier()

    n_chunks = math.ceil(len(coll) / chunk_size)
    rows = [min(len(coll), (k + 1) * chunk_size) - k * chunk_size for k in range(n_chunks)]
    todo = None
    if world.is_main:
        todo = [k for k in range(n_chunks) if not parts.chunk_ok(k, rows[k], dims)]
        if len(todo) < n_chunks:
            say(f"resuming {parts.dir}: {n_chunks - len(todo)} of {n_chunks} chunks already done")
    todo = world.broadcast(todo)
    mine = world.shard(todo)
    say(f"{len(coll)} images in {len(coll.classes)} classes from {show(cfg.data)}; "
        f"{cfg.backbone} {','.join(levels)} {pool} at {pp.input_size} px on {device}"
        + (f" ({world.size} processes)" if world.size > 1 else ""))

    if todo:
        try:
            result.loop_seconds = _compute_chunks(cfg, coll, mine, chunk_size, parts, levels,
                                                  pool, device, dtype, decoder, world,
                                                  quiet=cfg.quiet, templates=templates)
        except NonFiniteFeatures as e:
            if world.is_main and not parts.done(n_chunks):
                parts.remove()  # nothing computed that a rerun could use
                raise
            raise NonFiniteFeatures(f"{e} (then delete {show(parts.dir)})") from None
    world.barrier()
    if not world.is_main:
        return _summarise(result, out, "shard-done", t0, read=False)

    missing = [k for k in range(n_chunks) if not parts.chunk_path(k).is_file()]
    if missing:
        raise FeatxError(f"{parts.dir}: chunks {missing[:5]} are missing after the run (did a "
                         f"process fail?); run the command again to redo them")
    cache_meta = CacheMeta(
        backbone=cfg.backbone, weights=settings["weights"], image_size=pp.input_size,
        pool=pool, dtype=dtype, classes=coll.classes, split_spec=coll.split_spec,
        seed=cfg.seed, fingerprint=fp,
        extra={"layers": levels, "preprocessing": settings["preprocessing"],
               **_preprocess_attrs(pp, bb), "decoding": decoder.preprocessing,
               "precision": settings["precision"], "weights_source": _weights_source(cfg.weights),
               "feature_fingerprint": feat_fp, "files_fingerprint": settings["files"],
               "duplicates": len(coll.duplicates),
               "duplicate_groups": coll.duplicates, "featx_version": __version__,
               "dataset_format": coll.dataset_format, "conflict_policy": coll.conflict_policy,
               # an HDF5 attribute holds 64 KiB: the first groups, and the count
               "label_conflicts": coll.conflicts[:100], "n_label_conflicts": len(coll.conflicts),
               "dropped": coll.dropped,
               "task": task_name(cfg.task),
               **({"source_classes": coll.source_classes, "task_map": coll.task_map}
                  if coll.task_map else {}),
               "data_root": show(coll.root.resolve()), **scan_attrs(coll.scan),
               **({"data_source": coll.source} if coll.source else {}),
               **({"prompts": templates} if templates else {})})
    prompts = _prompts(cfg, parts, coll, templates, device) if templates else None
    try:
        _assemble(out, cache_meta, coll, dims, parts, n_chunks, prompts)
    except (FeatxError, OSError, KeyboardInterrupt):
        raise  # the chunks are sound: a rerun resumes from them
    except Exception as e:  # noqa: BLE001 -- chunks a rerun would trip on again: not kept
        parts.remove()
        raise FeatxError(f"writing {show(out)} from the computed chunks failed "
                         f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                         f"the work folder {show(parts.dir)} was removed, so a rerun starts "
                         f"afresh") from None
    parts.remove()
    return _summarise(result, out, "written", t0)


def _templates(cfg: ExtractConfig, bb) -> list[str] | None:
    """The zero-shot templates of a CLIP run (None for other backbones)."""
    from featx import zeroshot

    if bb.source != "open_clip":
        if cfg.prompts:
            raise FeatxError(f"--prompts: {bb.name} has no text tower; zero-shot prompts need a "
                             f"clip/ backbone")
        return None
    return zeroshot.read_templates(cfg.prompts)


def _zeroshot_from(model, cfg: ExtractConfig, parts: Parts, classes, templates, device):
    from featx import zeroshot

    arch = cfg.backbone.removeprefix("clip/").split(":")[0]
    p = zeroshot.compute(model, arch, classes, templates, device)
    zeroshot.save(parts.dir / zeroshot.FILE, p)
    return p


def _prompts(cfg: ExtractConfig, parts: Parts, coll: Collection, templates, device):
    """The class embeddings computed during the run, or (a run resumed with every chunk done)
    from a model built for them."""
    from featx.weights import build_model

    p = _stored_prompts(parts, templates)
    if p is None:
        model, _ = build_model(get_backbone(cfg.backbone), cfg.weights, seed=cfg.seed,
                               progress=not cfg.quiet, image_size=cfg.image_size)
        p = _zeroshot_from(model.eval(), cfg, parts, coll.classes, templates, device)
    return p


def _stored_prompts(parts: Parts, templates):
    from featx import zeroshot

    p = zeroshot.load(parts.dir / zeroshot.FILE)
    return p if p is not None and p.templates == list(templates) else None


def _preprocess_attrs(pp, bb) -> dict:
    """The model's preprocessing and what its levels are, as root attributes."""
    return {"input_size": pp.input_size, "resize_size": pp.resize_size, "crop_pct": pp.crop_pct,
            "interpolation": pp.interpolation, "mean": list(pp.mean), "std": list(pp.std),
            "resize_mode": pp.resize_mode, "fill": list(pp.fill), "preprocess": pp.describe(),
            "backbone_source": bb.source, "backbone_family": bb.family,
            "token_levels": sorted(bb.token_levels)}


def collection_for(cfg: ExtractConfig) -> Collection:
    """The run's images: DATA read with its reader, split, relabelled for --task."""
    from featx.datasets.options import DataOptions

    return DataOptions(format=cfg.format, conflicts=cfg.conflicts, label=cfg.label,
                       agree=cfg.agree, task=cfg.task, hf_split=cfg.hf_split,
                       image_column=cfg.image_column, label_column=cfg.label_column,
                       id_column=cfg.id_column).collection(cfg.data, cfg.split, cfg.seed)


def _weights_source(weights: str) -> str:
    return weights if weights in ("imagenet", "none") else str(Path(weights).resolve())


def _compute_chunks(cfg: ExtractConfig, coll: Collection, chunks: list[int], chunk_size: int,
                    parts: Parts, levels: list[str], pool: str, device, dtype: str, decoder,
                    world, quiet: bool, templates: list[str] | None = None) -> float:
    """Run this rank's chunks through the model; each finished chunk goes to the writer thread.
    Returns the seconds the loop took (model building excluded)."""
    from featx.engine import Engine
    from featx.loader import ChunkBatches, default_workers, make_loader

    n = len(coll)
    # rank 0 first: concurrent first downloads of the same weights would race
    if not world.is_main:
        world.barrier()
    engine = Engine(cfg.backbone, cfg.weights, levels, pool, device, dtype, seed=cfg.seed,
                    progress=not quiet and world.is_main and sys.stderr.isatty(),
                    image_size=cfg.image_size)
    pp = engine.preprocess
    if world.is_main:
        world.barrier()
        if templates and _stored_prompts(parts, templates) is None:
            _zeroshot_from(engine.model, cfg, parts, coll.classes, templates, device)
    batches = ChunkBatches(chunks, chunk_size, cfg.batch_size, n)
    workers = cfg.workers if cfg.workers is not None else default_workers(device.type)
    dataset = decoder.dataset([coll.image(i) for i in range(n)], pp)
    total = batches.n_rows()
    writer = ChunkWriter(parts)
    bar = Progress(total, "extract" if world.size == 1 else f"extract (rank 0 of {world.size})",
                   "img", quiet=quiet or not world.is_main)
    current, buf = -1, []
    t0 = time.perf_counter()
    try:
        for batch in make_loader(dataset, batches, workers, _pin(decoder, device),
                                 decoder.collate):
            idx, images, errors = decoder.finish(batch, device, pp)
            valid = np.array([not e for e in errors], dtype=bool)
            feats = engine(images, valid, [show(coll.paths[int(i)]) for i in idx])
            k = int(idx[0]) // chunk_size
            if k != current:
                current, buf = k, []
            buf.append((feats, valid, errors))
            if int(idx[-1]) + 1 == min(n, (k + 1) * chunk_size):  # the chunk's last batch
                writer.put(k, {lv: np.concatenate([b[0][lv] for b in buf]) for lv in levels},
                           np.concatenate([b[1] for b in buf]), [e for b in buf for e in b[2]])
                buf = []
            bar.update(len(idx))
    finally:
        bar.close()
        writer.close()
    return time.perf_counter() - t0


def _assemble(out: Path, meta: CacheMeta, coll: Collection, dims: dict, parts: Parts,
              n_chunks: int, prompts=None) -> None:
    """Chunk files -> the cache at `out` (written beside it, moved into place when complete)."""
    writer = CacheWriter(out, meta, coll.paths, coll.labels, coll.split, dims)
    try:
        if prompts is not None:
            writer.write_zeroshot(prompts.templates, prompts.class_embeddings,
                                  prompts.logit_scale)
        writer.write_optional(coll.label_dist, coll.extras, coll.fold, coll.source_labels)
        start, n_failed = 0, 0
        for k in range(n_chunks):
            feats, valid, errors = parts.read_chunk(k)
            writer.write_rows(start, feats, valid, errors)
            start += len(valid)
            n_failed += int((~valid).sum())
        writer.set_attrs(n_failed=n_failed)
        if coll.scan is not None and coll.scan.skipped:
            writer.add_strings("skipped/path", [p for p, _ in coll.scan.skipped])
            writer.add_strings("skipped/reason", [r for _, r in coll.scan.skipped])
    except OSError as e:
        writer.abort()
        raise os_error(out, e, "write the cache") from None
    except BaseException:
        writer.abort()
        raise
    writer.commit()


def _summarise(result: ExtractResult, out: Path, status: str, t0: float,
               read: bool = True) -> ExtractResult:
    result.status = status
    if read:
        with Cache(out) as c:
            valid, errors, paths = c.valid, c.errors, c.paths
        bad = np.flatnonzero(~valid)
        result.n_failed = len(bad)
        result.failures = [(paths[i], errors[i]) for i in bad[:10]]
    result.seconds = time.perf_counter() - t0
    return result


def extract_images(paths: Sequence[Path], *, backbone: str, weights: str,
                   layers: str | Sequence[str], pool: str | None, image_size: int | None,
                   dtype: str | None,
                   seed: int = 0, batch_size: int = 64, workers: int | None = None,
                   device: str = "auto", quiet: bool = False, decode: str = "auto",
                   fast_decode: bool = False) -> tuple[dict[str, np.ndarray], np.ndarray, list[str], str]:
    """Features of arbitrary image files in memory, by the same preprocessing and model path as
    `featx extract` (no cache written): ({level: [n, D]}, valid [n], errors [n],
    feature_fingerprint) -- compare the last with a cache's `feature_fingerprint` attribute."""
    from featx.engine import Engine, default_dtype, resolve_device
    from featx.loader import default_workers, make_loader

    levels = parse_levels(layers) if isinstance(layers, str) else parse_levels(",".join(layers))
    dev = resolve_device(device)
    dtype = dtype or default_dtype(dev)
    _check_options(ExtractConfig(data=Path("."), image_size=image_size, batch_size=batch_size,
                                 workers=workers, dtype=dtype, pool=pool, decode=decode))
    decoder = _choose_decoder(decode, dev, fast=fast_decode)
    bb = get_backbone(backbone)
    pool = resolve_pool(bb, levels, pool)
    pp = bb.preprocess(image_size)
    settings = feature_settings(backbone, weights, levels, pool, pp.input_size, dtype, seed,
                                preprocessing_id(decoder.preprocessing, pp), _precision(dev))
    engine = Engine(backbone, weights, levels, pool, dev, dtype, seed=seed,
                    progress=not quiet and sys.stderr.isatty(), image_size=image_size)
    n = len(paths)
    feats = {lv: np.zeros((n, d), dtype=engine.np_dtype) for lv, d in engine.dims.items()}
    valid = np.zeros(n, dtype=bool)
    errors = [""] * n
    batches = [list(range(s, min(n, s + batch_size))) for s in range(0, n, batch_size)]
    workers = default_workers(dev.type) if workers is None else workers
    with Progress(n, "features", "img", quiet=quiet) as bar:
        for batch in make_loader(decoder.dataset(list(paths), pp), batches, workers,
                                 _pin(decoder, dev), decoder.collate):
            idx, images, errs = decoder.finish(batch, dev, pp)
            ok = np.array([not e for e in errs], dtype=bool)
            rows = idx.numpy()
            for lv, x in engine(images, ok, [show(paths[int(i)]) for i in rows]).items():
                feats[lv][rows] = x
            valid[rows] = ok
            for i, e in zip(rows, errs):
                errors[i] = e
            bar.update(len(rows))
    return feats, valid, errors, feature_fingerprint(settings)


def scan_attrs(scan: FolderScan | None) -> dict:
    """Root attributes about the walk of a folder DATA (rows of /skipped: what was not used)."""
    if scan is None:
        return {}
    return {"n_skipped": len(scan.skipped), "links_out": scan.links_out,
            "links_in": scan.links_in}


def describe_failures(result: ExtractResult, limit: int = 5) -> list[str]:
    """Lines for the end-of-run report: failures with reasons, duplicate groups."""
    lines = []
    if result.scan is not None:
        lines += describe_scan([(show(p), r) for p, r in result.scan.skipped],
                               result.scan.links_out, result.scan.links_in)
    if result.n_failed:
        lines.append(f"{result.n_failed} of {result.n} images could not be used (recorded in "
                     f"/valid and /errors):")
        lines += [f"  {printable(p)}: {printable(r)}" for p, r in result.failures[:limit]]
        if result.n_failed > limit:
            lines.append(f"  ... and {result.n_failed - limit} more (featx info shows them)")
    lines += describe_conflicts(result.conflicts, result.conflict_policy)
    lines += [f"{n} images left out: {why}" for why, n in result.dropped.items()]
    if result.duplicates:
        n_files = sum(len(g) for g in result.duplicates)
        lines.append(f"{len(result.duplicates)} groups of identical files ({n_files} files), "
                     f"each kept on one side of the split; e.g. "
                     f"{', '.join(result.duplicates[0][:3])}")
    return lines


