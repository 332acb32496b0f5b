"""`fftui sweep`: grids and random searches of parameters and seeds, run on Ray Tune (the optional
extra ``fftui[sweep]``), each trial a recorded run, aggregated over seeds.

definition: what is swept and the trials' configurations; state: the sweep folder (sweep.json,
trials/); trial: one trial as a worker runs it; execute: Ray Tune; results: table, CSV, plots;
progress: the progress bar; command: the command line."""
