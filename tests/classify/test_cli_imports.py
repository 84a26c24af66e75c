"""`classify --help` must not import torch (classify runs where only the cache is)."""

import subprocess
import sys

PROBE = """
import sys
from click.testing import CliRunner
from classify.cli import main
for args in (["--help"], ["fit", "--help"], ["stack", "--help"], ["ablate", "--help"],
             ["predict", "--help"]):
    assert CliRunner().invoke(main, args).exit_code == 0, args
print(",".join(m for m in ("torch", "sklearn", "lightgbm") if m in sys.modules) or "none")
"""


def test_help_imports_neither_torch_nor_sklearn():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "none"


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "classify", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0
    for cmd in ("fit", "stack", "ablate", "predict"):
        assert cmd in out.stdout


WORK = """
import sys
from click.testing import CliRunner
from classify.cli import main
for args in (["fit", sys.argv[1], "--quiet"], ["stack", sys.argv[1], "--folds", "2", "--quiet"]):
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
print("torch" in sys.modules)
"""


def test_fit_and_stack_never_import_torch(balanced):
    out = subprocess.run([sys.executable, "-c", WORK, str(balanced)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
