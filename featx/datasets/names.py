"""The `--format` names, importable without loading the readers (for the CLI's help)."""

FORMATS = ("folder", "csv", "fi", "emoset", "emotion6", "artphoto", "abstract", "twitter1",
           "twitter2", "hf", "webdataset")
