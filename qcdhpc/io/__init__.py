"""HDF5 I/O that knows no physics: containers by kind (containers.py), atomic writes (atomic.py).
Checkpoint segments of runs in progress live in qcdhpc.run.segments."""
