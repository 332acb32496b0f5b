"""What the package declares about itself: one version string, `fftui --version`, type markers."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fftui.cli import main

ROOT = Path(__file__).resolve().parents[1]


def version_in_source() -> str:
    """The version as written in fftui/__init__.py, read as text (not imported)."""
    text = (ROOT / "fftui" / "__init__.py").read_text()
    found = re.findall(r'^__version__ = "([^"]+)"', text, flags=re.M)
    assert len(found) == 1, "fftui/__init__.py must assign __version__ exactly once"
    return found[0]


def test_version_flag_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert out == f"fftui {version_in_source()}\n"
    assert re.fullmatch(r"fftui \d+\.\d+\.\d+\S*\n", out)


def test_version_flag_via_module():
    res = subprocess.run([sys.executable, "-m", "fftui", "--version"], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert res.returncode == 0 and res.stderr == ""
    assert res.stdout.strip() == f"fftui {version_in_source()}"


def test_pyproject_takes_the_version_from_the_package():
    text = (ROOT / "pyproject.toml").read_text()
    project = text.split("[project]", 1)[1].split("\n[", 1)[0]
    assert not re.search(r"^version\s*=", project, flags=re.M), "a second version string in pyproject.toml"
    assert re.search(r'^dynamic\s*=\s*\[[^]]*"version"', project, flags=re.M)
    assert re.search(r'\[tool\.hatch\.version\]\s*\npath\s*=\s*"fftui/__init__\.py"', text)


@pytest.mark.parametrize("package", ["engine", "fftui"])
def test_packages_are_marked_typed(package):
    assert (ROOT / package / "py.typed").is_file()
