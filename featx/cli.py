"""The `featx` command: extract, info, demo. Heavy imports happen inside the commands."""

from __future__ import annotations

from pathlib import Path

import click

from featx.errors import one_line_errors


def _err(msg: str) -> None:
    click.echo(msg, err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="featx")
def main() -> None:
    """Images -> multi-level CNN features (L0..L4) in one HDF5 cache."""


@main.command()
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--backbone", default="resnet101", show_default=True,
              help="resnet18/34/50/101/152, vgg16, vgg19")
@click.option("--weights", default="imagenet", show_default=True,
              help="imagenet, none (random, seeded by --seed) or PATH to a state_dict file")
@click.option("--layers", default="L0-L4", show_default=True, help="e.g. L0-L4, L3,L4, L4")
@click.option("--pool", default="gap", show_default=True, help="gap, gmp, gap+gmp or meanstd")
@click.option("--image-size", default=224, show_default=True, type=int)
@click.option("--batch-size", default=64, show_default=True, type=int)
@click.option("--workers", default=None, type=int,
              help="decoding processes (default: 1 on a small CPU box, most cores with a GPU)")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N")
@click.option("--dtype", type=click.Choice(["float16", "float32"]), default=None,
              help="stored feature type (default: float16 on CUDA, float32 on the CPU)")
@click.option("--split", default="80/5/15", show_default=True, help="train/val/test percentages")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="cache file (default: cache/<data>-<backbone>-<pool>.h5)")
@click.option("--chunk-size", type=int, default=None,
              help="images per resumable chunk, a multiple of --batch-size (default ~256 on "
                   "the CPU, ~2048 on a GPU)")
@click.option("--decode", type=click.Choice(["auto", "cpu", "gpu"]), default="auto",
              show_default=True, help="where JPEGs are decoded (gpu: nvJPEG on the CUDA device)")
@click.option("--quiet", "-q", is_flag=True, help="no progress bar or messages")
@one_line_errors
def extract(data: Path, backbone: str, weights: str, layers: str, pool: str, image_size: int,
            batch_size: int, workers: int | None, device: str, dtype: str | None, split: str,
            seed: int, out: Path | None, chunk_size: int | None, decode: str,
            quiet: bool) -> None:
    """Extract pooled L0..L4 features of DATA (a class-folder tree or a CSV) into a cache.

    Safe to kill at any moment: the same command resumes where it stopped. Under
    `torchrun --nproc-per-node N -m featx extract ...` the ranks share the work."""
    from featx import distributed
    from featx.extract import ExtractConfig, describe_failures, run_extract
    from featx.pathnames import show

    cfg = ExtractConfig(data=data, backbone=backbone, weights=weights, layers=layers, pool=pool,
                        image_size=image_size, batch_size=batch_size, workers=workers,
                        device=device, dtype=dtype, split=split, seed=seed, out=out,
                        quiet=quiet, chunk_size=chunk_size, decode=decode)
    try:
        result = run_extract(cfg, log=_err)
    finally:
        distributed.shutdown()
    if quiet or result.status == "shard-done":
        return
    if result.status == "written":
        _err(f"wrote {show(result.out)}: {result.n} images in {result.seconds:.1f} s")
    for line in describe_failures(result):
        _err(line)
    click.echo(show(result.out))


@main.command()
@click.argument("cache", type=click.Path(path_type=Path))
@click.option("--failures", default=5, show_default=True, help="how many failures to list")
@one_line_errors
def info(cache: Path, failures: int) -> None:
    """Summary of CACHE: settings, levels and dims, counts per class and split, failures."""
    from featx.info import summary

    click.echo(summary(cache, max_failures=failures))


@main.command()
@click.argument("folder", type=click.Path(path_type=Path), default=Path("cache/demo"))
@click.option("--per-class", default=60, show_default=True, help="images per class")
@click.option("--size", default=112, show_default=True, help="image size in pixels")
@click.option("--quiet", "-q", is_flag=True)
@one_line_errors
def demo(folder: Path, per_class: int, size: int, quiet: bool) -> None:
    """Offline demo: generate an 8-class image set in FOLDER, extract its features with
    resnet18, and show what to run next."""
    from featx.demo import run_demo
    from featx.info import summary

    result, next_commands = run_demo(folder, per_class=per_class, size=size, quiet=quiet,
                                     log=_err)
    click.echo(f"\nfeature cache: {result.out}"
               + (" (reused)" if result.status == "up-to-date" else ""))
    click.echo(summary(result.out))
    click.echo("\nnext:")
    for cmd in next_commands:
        click.echo(f"  {cmd}")
