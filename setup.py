from setuptools import find_packages, setup

setup(
    name="featx",
    version="0.1.0",
    description="Visual emotion recognition research: cached multi-level CNN features, "
    "classical models on them, and end-to-end fine-tuning recipes.",
    python_requires=">=3.10",
    packages=find_packages(include=["featx", "featx.*", "classify", "classify.*",
                                    "finetune", "finetune.*"]),
    # the default `featx backbones` rows (featx.backbones.known)
    package_data={"featx.backbones": ["known_rows.json"]},
    install_requires=[
        "torch>=2.4",
        # torchvision from the registry is built against CUDA torch: >=0.29 makes pip take the
        # matching torch build with it, which also runs on a CPU.
        "torchvision>=0.29",
        "h5py>=3.8",
        "numpy>=1.24",
        "scipy>=1.10",
        "scikit-learn>=1.3",
        "lightgbm>=4.0",
        "joblib>=1.3",
        "click>=8.1",
        "pillow>=10.0",
        "tqdm>=4.66",
        "matplotlib>=3.7",
        # today's backbones: timm/<model>, clip/<arch>:<tag>, their hub cache, .safetensors
        "timm>=1.0.15",
        "open_clip_torch>=2.26",
        "huggingface_hub>=0.23",
        "safetensors>=0.4",
    ],
    extras_require={"dev": ["pytest>=7.4", "pytest-timeout>=2.2",
                            # real photos (skimage.data) for the pretrained-weights tests
                            "scikit-image>=0.22",
                            # the export test reads parquet back with polars too
                            "polars>=1.0",
                            # CI runs the tests of every extra below
                            "featx[hf,dask,track]"],
                    # --format hf|webdataset, featx export --to parquet, featx.load
                    "hf": ["datasets>=2.19", "pyarrow>=15", "webdataset>=0.2.86",
                           "braceexpand>=0.1.7", "pandas>=2.0"],
                    # classify ablate --backend dask[:ADDRESS]
                    "dask": ["dask[distributed]>=2024.1", "dask-jobqueue>=0.8"],
                    # --track tensorboard|mlflow (mlflow-skinny: the client; sqlalchemy and
                    # alembic: its sqlite:/// store)
                    "track": ["tensorboard>=2.15", "mlflow-skinny>=2.12", "sqlalchemy>=2.0",
                              "alembic>=1.13"]},
    entry_points={
        "console_scripts": [
            "featx=featx.cli:main",
            "classify=classify.cli:main",
            "finetune=finetune.cli:main",
        ]
    },
)
