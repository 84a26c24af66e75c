"""classify: cached features -> classical models, stacking, ablations. Never imports torch.

In a notebook: `classify.load_model(PATH).predict_proba(X)` (classify.api, imported on first
use)."""


def __getattr__(name: str):
    if name in ("load_model", "LoadedModel"):
        from classify import api

        return getattr(api, name)
    raise AttributeError(f"module 'classify' has no attribute {name!r}")
