"""featx meeting the ecosystem: optional dependencies (extras), export of a cache to Parquet/npz,
the notebook API (`featx.load`), and experiment tracking (TensorBoard, MLflow). Nothing here is
imported by `import featx`; each optional library is imported where it is used."""
