"""`finetune run`: one run per --out, like featx extract (featx.lock)."""

import socket
import subprocess
import sys

from click.testing import CliRunner

from finetune.cli import main
from .finetune_helpers import QUICK, subprocess_env


def test_second_run_on_the_same_out_is_refused(images, tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from featx.lock import OutputLock; "
         "OutputLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(120)",
         str(out)], stdout=subprocess.PIPE, text=True, env=subprocess_env())
    try:
        assert holder.stdout.readline().strip() == "locked"
        res = CliRunner().invoke(main, ["run", "resnet_fc", "--data", str(images), "--out",
                                        str(out), "--epochs", "1", *QUICK])
        assert res.exit_code == 1, res.output
        assert f"pid {holder.pid} on {socket.gethostname()}" in res.output
        assert not out.exists()
    finally:
        holder.kill()
        holder.wait()
