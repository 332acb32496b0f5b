"""Where ctrl+s saves the screen, under which name, and how the path is shown."""
from __future__ import annotations

import itertools
from pathlib import Path


def screenshot_folder() -> Path:
    """Where ctrl+s saves SVG screenshots: ``screenshots`` in the user's data folder for fftui."""
    import platformdirs

    return Path(platformdirs.user_data_dir("fftui")) / "screenshots"


def save_new(folder: Path, stem: str, text: str) -> Path:
    """Write ``text`` to ``folder``/``stem``.svg, or ``stem``-2.svg, -3 ... when the name is taken
    (created exclusively: nothing is overwritten); the folder is made if missing. Raises OSError."""
    folder.mkdir(parents=True, exist_ok=True)
    for n in itertools.count(1):
        path = folder / f"{stem}{'' if n == 1 else f'-{n}'}.svg"
        try:
            with open(path, "x", encoding="utf-8") as out:
                out.write(text)
        except FileExistsError:
            continue
        return path
    raise AssertionError("unreachable")


def home_relative(path: Path) -> str:
    """``path`` with the home folder written ``~`` when it lies inside it: shorter on the screen."""
    try:
        return str(Path("~") / path.relative_to(Path.home()))
    except (ValueError, RuntimeError):
        return str(path)
