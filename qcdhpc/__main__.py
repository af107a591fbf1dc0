"""`python -m qcdhpc ...` is the same as the `qcdhpc` console script."""
from .cli.main import main

raise SystemExit(main())
