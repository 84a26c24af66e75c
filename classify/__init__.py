"""classify: cached features -> classical models, stacking, ablations. Never imports torch."""
