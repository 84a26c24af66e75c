"""Optional dependencies, grouped as setup.py's extras: a missing one is a one-line error naming
the `pip install` that adds it."""

from __future__ import annotations

import importlib
from types import ModuleType

from featx.errors import FeatxError

# the import name -> the extra that installs it (setup.py's extras_require)
EXTRA_OF = {"datasets": "hf", "pyarrow": "hf", "pyarrow.parquet": "hf", "braceexpand": "hf",
            "webdataset": "hf", "pandas": "hf", "dask": "dask", "distributed": "dask",
            "dask_jobqueue": "dask", "tensorboard": "track", "mlflow": "track",
            "torch.utils.tensorboard": "track", "sqlalchemy": "track"}


def need(module: str) -> ModuleType:
    """Import an optional dependency, or fail in one line naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        extra = EXTRA_OF.get(module, "dev")
        raise FeatxError(f"this needs {module.split('.')[0]}, which is not installed: "
                         f"pip install 'featx[{extra}]'") from None
