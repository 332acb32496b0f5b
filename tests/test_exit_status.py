"""The live app's process status: 0 after a quit, 1 after a crash, with its output flushed."""
import os
import subprocess
import sys
import textwrap

import pytest

from fftui.cli import app_exit_status

# Runs `fftui run` with a stand-in for the app: a real Textual app, run headless, that either
# quits or raises while mounting. Text printed before the app starts sits in stdout's buffer (a
# pipe), so it reaches the test only if the process flushes before it ends. The final
# sys.exit(99) shows whether `main` returned instead of ending the process itself.
SCRIPT = textwrap.dedent("""
    import sys
    from textual.app import App
    import fftui.app

    class StandIn(App):
        def __init__(self, config, **kwargs):  # the data load behind FFApp's first frame (kwargs)
            super().__init__()

        def run(self, **kwargs):
            return super().run(headless=True, **kwargs)

    class Crashing(StandIn):
        def on_mount(self):
            raise RuntimeError("the app fell over")

    class Quitting(StandIn):
        def on_mount(self):
            self.exit()

    fftui.app.FFApp = {"crash": Crashing, "quit": Quitting}[sys.argv[1]]
    print("before the app", end="")
    from fftui.cli import main
    main(["run", "--data", "sample", "--device", "cpu"])
    sys.exit(99)
""")


def _run(kind: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", SCRIPT, kind], capture_output=True, text=True, env=env,
                          timeout=180)


@pytest.mark.parametrize("kind,status", [("quit", 0), ("crash", 1)])
def test_app_process_status(kind, status):
    res = _run(kind)
    assert res.returncode == status, res.stderr[-2000:]
    assert res.stdout.startswith("before the app")
    if kind == "crash":
        assert "the app fell over" in res.stderr  # Textual's own report of the crash


@pytest.mark.parametrize("code,status", [(None, 0), (0, 0), (1, 1), (3, 3), (256, 1), (-1, 1)])
def test_exit_status_from_return_code(code, status):
    assert app_exit_status(code) == status
