"""Running a sweep's trials on Ray Tune: a local Ray sized by --cpus/--gpus, or a cluster joined by
--address; one Tune trial per sweep trial (a grid over the trials' indices), each with its share of
CPUs and GPUs and torch's thread count set to its CPU share; Tune's own files in a temporary folder;
progress and outcomes fed back through a Tune Callback into sweep.json and a progress bar.

A cluster needs the sweep folder on a file system its workers share (they write the trials' runs
there); the trials' statistics come back through Tune either way."""
from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .definition import SweepError
from .state import SweepState

if TYPE_CHECKING:
    from engine.headless import StopRequest

INSTALL = "fftui sweep needs Ray Tune: pip install 'fftui[sweep]'"
ADDRESS_TIMEOUT = 30.0  # seconds to wait for a cluster at --address
# Trials given to one Tuner: Tune keeps every trial it runs in the driver's memory (about 90 kB each,
# measured), so a long sweep runs as consecutive Tuners of at most this many and the driver stays
# bounded; each new Tuner starts its workers afresh (measured: 8 to 10 s on 2 busy cores)
TUNER_TRIALS = 1000

# Ray's own output kept off the terminal: no dashboard, no usage report, no worker logs, no Tune tables
QUIET_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DEDUP_LOGS": "0", "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
             "RAY_AIR_NEW_OUTPUT": "0", "TUNE_DISABLE_SIGINT_HANDLER": "1", "RAY_DISABLE_IMPORT_WARNING": "1",
             "TUNE_WARN_INSUFFICENT_RESOURCE_THRESHOLD_S": "0", "RAY_TRAIN_V2_ENABLED": "0",
             "TUNE_RESULT_BUFFER_LENGTH": "1", "TUNE_MAX_PENDING_TRIALS_PG": "16"}


def require_ray() -> None:
    """SweepError (the install line) when Ray Tune cannot be imported."""
    try:
        import ray  # noqa: F401
        from ray import tune  # noqa: F401
    except ImportError:
        raise SweepError(INSTALL) from None


def check_address(address: str, timeout: float = ADDRESS_TIMEOUT) -> None:
    """SweepError (one line) unless something answers at HOST:PORT within `timeout` seconds ("auto"
    and ray:// addresses are left to Ray)."""
    if address == "auto":
        return
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise SweepError(f"--address {address!r}: expected HOST:PORT")
    deadline = time.monotonic() + timeout
    last: OSError | None = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, int(port)), timeout=min(5.0, timeout)):
                return
        except OSError as exc:
            last = exc
            time.sleep(1.0)
    raise SweepError(f"no Ray cluster answers at {address} (gave up after {timeout:g} s: "
                     f"{getattr(last, 'strerror', None) or last})")


@contextlib.contextmanager
def ray_session(cpus: float | None, gpus: float | None, address: str | None) -> Iterator[None]:
    """Ray started for the sweep (or joined, with an address) and shut down after; a Ray already
    started in this process (tests) is used as it is and left running."""
    import ray

    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    if ray.is_initialized():
        yield
        return
    if address:
        check_address(address)
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR,
                               "configure_logging": True}
    if address:
        options["address"] = address
    else:  # a Ray of its own, even where `ray start` left a cluster running on this machine
        options.update(address="local", num_cpus=int(cpus) if cpus else None, num_gpus=gpus)
    try:
        with _quiet_stderr(), _core_output_to_log() if address else contextlib.nullcontext():
            ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        if not address:
            raise
        raise SweepError(join_failure(address, exc)) from None
    try:
        yield
    finally:
        with _quiet_stderr():
            ray.shutdown()


def join_failure(address: str, exc: BaseException) -> str:
    """One line for a cluster at `address` that answered but could not be joined; a cluster started
    by `ray start` uses token authentication, which a driver given an address only uses when told."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    line = f"could not join the Ray cluster at {address}: {first}"
    if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        line += ("; if the cluster uses token authentication (the default of `ray start`), run with "
                 "RAY_AUTH_MODE=token and its token in ~/.ray/auth_token or RAY_AUTH_TOKEN")
    return line


@contextlib.contextmanager
def _core_output_to_log() -> Iterator[None]:
    """Ray's C++ core writes its connection retries straight to file descriptor 2 (a line a second
    while it cannot join); while joining, that descriptor goes to fftui's log file instead."""
    from engine.logs import log_file

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        path = log_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        target = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError:
        target = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(target, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(target)


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Ray's start-up and shutdown messages (warnings printed straight to fd 2) kept off the terminal."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in ("ray", "ray.tune", "ray.train", "ray.air"):  # a failed trial is our line, not Ray's report
            logging.getLogger(name).setLevel(logging.CRITICAL)
        yield


def _trainable(config: dict[str, Any], trials: dict[int, dict[str, Any]], folder: str, threads: int,
               keep_samples: str) -> None:
    """The Tune trainable: run the sweep's trial config["trial"] and report its outcome once."""
    from ray import tune

    from .trial import run_trial

    outcome = run_trial(trials[config["trial"]], folder, threads=threads, keep_samples=keep_samples)
    tune.report({"outcome": outcome})


def _make_callback(state: SweepState, on_change: Callable[[], None]) -> Any:
    """A Tune Callback that marks the trials in `state` as Tune starts and ends them."""
    from ray.tune import Callback

    class Progress(Callback):
        """sweep.json and the progress bar follow Tune's trials. Tune pickles its run configuration
        (its experiment state): the callback is pickled without what it holds."""

        def __init__(self, state: SweepState, on_change: Callable[[], None]) -> None:
            self.state, self.on_change = state, on_change

        def __getstate__(self) -> dict:
            return {}

        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self.state.mark(trial.config["trial"], "running", error=None)
            self.on_change()

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            outcome = result.get("outcome") or {}
            self.state.mark(trial.config["trial"], outcome.get("status", "failed"), error=outcome.get("error"),
                            stats=outcome.get("stats"), seconds=outcome.get("seconds"),
                            iterations=outcome.get("iterations"))
            self.on_change()

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self.state.mark(trial.config["trial"], "failed", error=_error_line(trial))
            self.on_change()

        def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
            self.state.save_if_due()  # a start marked within a second of an end reaches sweep.json

    return Progress(state, on_change)


def _error_line(trial: Any) -> str:
    """The last line of the exception that ended a Tune trial (its error file), e.g.
    "DataError: no MNIST training files in ..."."""
    text = ""
    path = getattr(trial, "error_file", None) or ""
    with contextlib.suppress(OSError, TypeError):
        text = open(path, encoding="utf-8").read()  # noqa: SIM115
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    last = lines[-1] if lines else "the trial's worker failed"
    for prefix in ("ray.exceptions.RayTaskError", "ray.exceptions."):
        if last.startswith(prefix):
            last = last.split(":", 1)[-1].strip()
    return re.sub(r"^[\w.]+\.(\w+): ", r"\1: ", last)[:300]  # engine.data.errors.DataError: -> DataError:


def run_trials(state: SweepState, *, cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0,
               cpus: float | None = None, gpus: float | None = None, address: str | None = None,
               concurrent: int | None = None, keep_samples: str = "auto",
               on_change: Callable[[], None] = lambda: None) -> StopRequest:
    """Run the sweep's trials that are not finished (SweepState.to_run) on Ray Tune; every outcome
    lands in `state` (and sweep.json) as it comes. A trial that fails or diverges is recorded with
    its reason and the others go on. A stop signal (engine.headless.stop_on_interrupt: SIGINT,
    SIGTERM, SIGHUP) stops the sweep: running trials end as interrupted. Returns the StopRequest
    (its signum says whether a signal stopped the sweep)."""
    require_ray()
    from ray import tune

    from engine.headless import StopRequest, stop_on_interrupt

    todo = state.to_run()
    if not todo:
        return StopRequest()
    for trial in todo:
        state.config(trial)  # every configuration validates before Ray starts
    with ray_session(cpus, gpus, address), tempfile.TemporaryDirectory(prefix="fftui-tune-") as scratch, \
            stop_on_interrupt() as stop:
        for start in range(0, len(todo), TUNER_TRIALS):
            if stop.signum is not None:
                break
            batch = {t["index"]: dict(t) for t in todo[start:start + TUNER_TRIALS]}
            trainable = tune.with_parameters(_trainable, trials=batch, folder=str(state.folder),
                                             threads=max(1, int(cpus_per_trial)), keep_samples=keep_samples)
            tuner = tune.Tuner(
                tune.with_resources(trainable, {"cpu": cpus_per_trial, "gpu": gpus_per_trial}),
                param_space={"trial": tune.grid_search(list(batch))},
                tune_config=tune.TuneConfig(max_concurrent_trials=concurrent, reuse_actors=True),
                run_config=tune.RunConfig(
                    name=f"sweep-{start}", storage_path=scratch, verbose=0, log_to_file=False,
                    callbacks=[_make_callback(state, on_change)],
                    stop=_stopper(stop),
                    failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
                    checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=False)),
            )
            with _quiet_stderr():
                tuner.fit()
            del tuner, trainable
    for trial in state.trials:  # what Tune never started or stopped half-way
        if trial["status"] == "running":
            trial["status"] = "interrupted" if stop.signum is not None else "failed"
            if stop.signum is None and not trial.get("error"):
                trial["error"] = "the trial ended without reporting its outcome"
    state.save()
    return stop


def _stopper(stop: StopRequest) -> Any:
    """A Tune Stopper that ends the whole experiment once `stop` is set."""
    from ray.tune.stopper import Stopper

    class StopAll(Stopper):
        def __init__(self, stop: StopRequest) -> None:
            self.stop = stop

        def __getstate__(self) -> dict:  # Tune pickles its run configuration; `stop` stays here
            return {}

        def __call__(self, trial_id: str, result: dict) -> bool:
            return self.stop.signum is not None

        def stop_all(self) -> bool:
            return self.stop.signum is not None

    return StopAll(stop)
