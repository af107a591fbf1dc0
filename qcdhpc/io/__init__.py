"""HDF5 I/O that knows no physics: atomic writes, the ensemble container, checkpoint segments."""
