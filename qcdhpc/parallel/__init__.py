"""Parallel execution helpers: MPI ranks (`qcdhpc.parallel.mpi`)."""
