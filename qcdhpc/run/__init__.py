"""Generic run machinery, shared by every family (knows no physics):

    driver.py      SegmentedRun: checks → lock → fresh/resume/complete → work in segments → atomic merge
    segments.py    OUT.partial/run.json and per-rank checkpoint segments
    lock.py        one writer per OUT.partial (fcntl.flock)
    signals.py     SIGTERM/SIGUSR1/SIGINT → exit 75 from the first instruction to the final rename
    ranks.py       MPI rank/size (mpi4py only under a launcher), rank split, local rank → GPU
    outputs.py     output paths that never replace inputs, directories or foreign files
    resources.py   memory / disk estimates checked before allocating
    provenance.py  code version, time and command recorded in every output
"""
