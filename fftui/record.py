"""What the command line says about recording a run: the flags' checks (--out with --no-record,
--keep-samples), the folder a run is recorded into (claimed before the data load), and --config's
file read back into a configuration. Nothing here imports torch."""
from __future__ import annotations

import argparse
from typing import Any

from engine.config import Config, ConfigError

SAMPLES_IN_FULL = 2048  # engine.store.SamplePolicy.DEFAULT_FULL, here without importing the store


def read_config_file(path: str) -> Config:
    """The configuration a run's config.json holds (its "config": every parameter); a run's folder
    stands for its config.json. UsageError (one line) for a file that cannot be read, is not
    fftui's or does not validate."""
    import json
    from pathlib import Path

    where = Path(path).expanduser()
    if where.is_dir():  # a run's folder: its config.json
        where = where / "config.json"
    try:
        description = json.loads(where.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _usage(f"fftui run: --config {where} does not exist") from None
    except OSError as exc:
        raise _usage(f"fftui run: cannot read --config {where}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError):
        raise _usage(f"fftui run: --config {where} is not JSON") from None
    values = description.get("config") if isinstance(description, dict) else None
    if not isinstance(values, dict):
        raise _usage(f"fftui run: --config {where} is not an fftui run's config.json (no \"config\" object)")
    try:
        return Config().replace(**values)
    except ConfigError as exc:
        raise _usage(f"fftui run: --config {where} does not validate: {exc}") from None


def check_recording_flags(args: argparse.Namespace) -> None:
    """--keep-samples parses and --out goes with recording; UsageError (one line) otherwise."""
    if getattr(args, "out", None) and not getattr(args, "record", True):
        raise _usage("fftui run: --out and --no-record contradict each other; give one")
    if getattr(args, "keep_samples", None) is not None and not getattr(args, "record", True):
        raise _usage("fftui run: --keep-samples and --no-record contradict each other; give one")
    if getattr(args, "keep_samples", None) is None:
        args.keep_samples = "auto"  # the default, here so that one given with --no-record is seen
    from engine.store.columns import SamplePolicy
    from engine.store.files import StoreError

    try:
        SamplePolicy.parse(args.keep_samples)
    except StoreError as exc:
        raise _usage(f"fftui run: {exc}") from None


def claim_folder(args: argparse.Namespace, cfg: Config) -> Any:
    """The folder the run is recorded into, claimed (before the data load): --out, else a new one
    in the store named after the preset or the mode and loss; None with --no-record. Raises
    engine.headless.OutputError or engine.store.StoreError (one line) when it cannot be claimed."""
    if not getattr(args, "record", True):
        return None
    if args.out:
        from engine.headless import prepare_out_dir

        return prepare_out_dir(args.out)
    from engine.store import claim_run_folder, run_name

    return claim_run_folder(run_name(cfg.mode, cfg.loss, args.preset))


def _usage(message: str) -> Exception:
    from .cli import UsageError

    return UsageError(message)
