"""HMCParams: every bad value is refused with its reason; derived save schedule is right."""
import math

import pytest

from qcdhpc.phi4.params import HMCParams

GOOD = dict(L=8, kappa=0.2, lam=0.02, nchains=2, ntraj=10, therm=5, every=2)


def test_defaults_and_normalisation():
    p = HMCParams(**GOOD)
    assert p.L == (8, 8) and p.volume == 64 and p.integrator == "omelyan" and p.dtype == "float64"
    assert HMCParams(**{**GOOD, "L": (4, 6)}).L == (4, 6)
    assert HMCParams.from_dict(p.to_dict()) == p
    assert p.to_dict()["L"] == [8, 8]  # JSON/HDF5-friendly


@pytest.mark.parametrize("change, reason", [
    ({"L": 1}, "L0 must be >= 2"),
    ({"L": (8, 1)}, "L1 must be >= 2"),
    ({"L": (8, 8, 8)}, "2 extents"),
    ({"L": 8.0}, "integer"),
    ({"kappa": math.nan}, "kappa must be finite"),
    ({"kappa": math.inf}, "kappa must be finite"),
    ({"lam": math.nan}, "lam must be finite"),
    ({"lam": -0.1}, "lam must be >= 0"),
    ({"nmd": 0}, "nmd must be >= 1"),
    ({"nmd": True}, "nmd must be an integer"),
    ({"tau": 0.0}, "tau must be > 0"),
    ({"tau": -1.0}, "tau must be > 0"),
    ({"tau": math.inf}, "tau must be finite"),
    ({"integrator": "euler"}, "unknown integrator 'euler'"),
    ({"dtype": "float16"}, "unknown dtype"),
    ({"device": "tpu"}, "unknown device"),
    ({"nchains": 0}, "nchains must be >= 1"),
    ({"ntraj": 0}, "ntraj must be >= 1"),
    ({"therm": -1}, "therm must be >= 0"),
    ({"every": 0}, "every must be >= 1"),
    ({"every": 20}, "no configuration would be saved"),
    ({"seed": -1}, "seed must be >= 0"),
    ({"seed": 2**64}, "seed must be < 2**64"),
])
def test_refused_with_reason(change, reason):
    with pytest.raises(ValueError, match=reason.replace("*", r"\*")):
        HMCParams(**{**GOOD, **change})


def test_save_schedule():
    p = HMCParams(**{**GOOD, "therm": 5, "ntraj": 7, "every": 3})
    saved = [t for t in range(p.ntraj_total) if p.is_saved(t)]
    # trajectories numbered from 0: after therm+3 and therm+6 trajectories, i.e. indices 7 and 10
    assert saved == [7, 10] and p.nsave == 2 and [p.save_index(t) for t in saved] == [0, 1]
