"""Sampling a trained diffusion model into a `samples` container, on the generic run machinery
(qcdhpc/run/driver.py): resumable, MPI-parallel, atomic.  Physics-agnostic: arrays in, arrays out.

The n samples are drawn in batches of `batch`; batch b's draws depend only on (seed, b) (see
sampling.iter_samples), so the batches can be split over MPI ranks (contiguous blocks) and a resumed
run equals an unbroken one bit for bit — on the same device type: CPU and GPU round differently, so
the device is part of the run's parameters.  Every finished batch is one checkpoint segment of its
rank; a stop signal ends the run after the current batch (exit 75).
"""
from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

import numpy as np

from ..io.containers import create_history, create_samples, open_container, write_rows
from ..run import ranks
from ..run.driver import RunFailed, SegmentedRun
from ..run.provenance import provenance
from ..run.signals import Interrupted

KIND = "diffusion-samples"
OUT_DTYPE = np.float32
LIVE_LAYERS = 6  # activations alive at once in a no_grad U-Net pass (input, skip connections, output)


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class SampleRun(SegmentedRun):
    """Draw `n` samples of the model file `model` into `out`.  The constructor loads the model and
    validates everything; run() samples and merges."""

    kind = KIND
    lockstep = False  # ranks work through their own batches at their own pace

    def __init__(self, model, out, *, n: int, steps: int, sampler: str, batch: int, seed: int,
                 denoise: bool = True, snr: float = 0.16, ode_method: str = "heun", device="cpu",
                 mala_step: float = 0.05, burn_in: int = 500, thin: int = 10, chains: int | None = None,
                 eps: float | None = None, time_grid: str | None = None,
                 **kwargs):
        from .energy import is_energy_model
        from .model_io import load_model

        super().__init__(out, inputs=(model,), **kwargs)
        self.model = Path(model)
        self.device = device
        self.net, self.sde, self.cfg = load_model(model, map_location=device)
        if sampler == "mala" and not is_energy_model(self.net):
            raise ValueError(f"--sampler mala samples exp(-E) of an energy model; {model} is a "
                             f"{self.cfg['net']} score model (train with --net energy, or use em/pc/ode)")
        self.site_shape = tuple(int(s) for s in self.cfg["data_shape"][1:])
        self.opts = {"model_sha256": sha256(model), "n": int(n), "steps": int(steps), "sampler": sampler,
                     "batch": int(batch), "seed": int(seed), "denoise": bool(denoise), "snr": float(snr),
                     "ode_method": ode_method, "device": device.type}
        if eps is not None:  # end time of the samplers / t_min of mala (default sde.eps_sample)
            if not 0 < eps < self.sde.T:
                raise ValueError(f"--eps must be in (0, {self.sde.T}) (got {eps})")
            self.opts["eps"] = float(eps)
        if time_grid is None:  # EDM-preconditioned models: steps uniform in ln s
            time_grid = "log-s" if self.cfg.get("precond", "eps") == "edm" else "t"
        if time_grid not in ("t", "log-s"):
            raise ValueError(f"--time-grid must be t or log-s (got {time_grid!r})")
        if time_grid != "t" and sampler != "mala":  # recorded only when used (older runs' options unchanged)
            self.opts["time_grid"] = time_grid
        if sampler == "mala":  # MCMC on the learned energy (MCMC-EBM); the diffusion options do not apply
            if not (0 < mala_step < float("inf")) or burn_in < 0 or thin < 1 or (chains is not None and chains < 1):
                raise ValueError(f"mala needs --mala-step > 0, --burn-in >= 0, --thin >= 1, --chains >= 1 (got "
                                 f"{mala_step}, {burn_in}, {thin}, {chains})")
            self.opts.update(mala_step=float(mala_step), burn_in=int(burn_in), thin=int(thin),
                             chains=int(chains) if chains else None, denoise=False)
        self.nbatch = -(-int(n) // int(batch))
        self._check_resources()
        if self.nbatch < self.comm.size:
            raise ValueError(f"{self.nbatch} batch(es) for {self.comm.size} MPI ranks: every rank needs "
                             "at least one; use a smaller --batch or fewer ranks")
        self.time_s = 0.0
        self.drawn = 0
        self.prepare()

    def _check_resources(self) -> None:
        """A batch's activations and the output file must fit (else torch dies mid-run, or the disk
        fills after hours).  Activations: a U-Net level l holds ~channels·2^l maps of V/4^l sites,
        ~2·channels·V numbers per layer summed over levels; under no_grad ~LIVE_LAYERS are alive."""
        from ..run import resources

        V = int(np.prod(self.site_shape))
        B = min(self.opts["batch"], self.opts["n"])
        channels = int(self.cfg.get("channels", 32) or 32)
        per_batch = B * V * 4 * (2 * channels * LIVE_LAYERS + 8)
        where = "GPU" if self.device.type == "cuda" else "host"
        if self.device.type == "cuda":
            import torch

            free, _ = torch.cuda.mem_get_info(self.device)
            if per_batch > 0.9 * free:
                raise ValueError(f"a batch of {B} samples needs about {resources.human(per_batch)} of GPU "
                                 f"memory, {resources.human(free)} is free: use a smaller --batch")
        else:
            resources.check_fits(ranks.local_size() * per_batch,
                                 f"a {where} batch of {B} samples of {self.site_shape} (use a smaller --batch)")
        resources.check_disk(self.out, self.opts["n"] * V * np.dtype(OUT_DTYPE).itemsize, "the samples file")

    # -- SegmentedRun interface ---------------------------------------------------------------
    def params(self) -> dict:
        return dict(self.opts)

    def output_params(self, path: Path) -> dict:
        with open_container(path, kinds=("samples",)) as c:
            h = c.history.get("sampler")
            return dict(h.attrs.get("options", {})) if h is not None else {}

    def _batches(self, rank: int) -> range:
        return range(*ranks.split_range(self.nbatch, self.comm.size, rank))

    def work(self, store, comm, sig) -> None:
        from .sampling import iter_samples

        o = self.opts
        mine = self._batches(comm.rank)
        done = store.indices()
        first = len(done) if done == list(range(len(done))) else 0  # contiguous from the block start
        store.discard_after(first - 1 if first else None)
        if first >= len(mine):
            return
        t0 = time.perf_counter()
        stop_at = min(o["n"], mine.stop * o["batch"])  # the last sample of this rank's block
        k = first
        if o["sampler"] == "mala":
            from .energy import mala_batches

            blocks = mala_batches(self.net, self.sde, stop_at, self.site_shape, o["batch"], step=o["mala_step"],
                                  burn_in=o["burn_in"], thin=o["thin"], chains=o["chains"], seed=o["seed"], t_min=o.get("eps"),
                                  device=self.device, first_batch=mine.start + first)
        else:
            blocks = ((b, 0, 0) for b in iter_samples(
                self.net, self.sde, stop_at, self.site_shape, o["sampler"], o["steps"], batch_size=o["batch"],
                denoise=o["denoise"], seed=o["seed"], device=self.device, eps=o.get("eps"),
                time_grid=o.get("time_grid", "t"),
                progress=self.progress and comm.rank == 0, snr=o["snr"], method=o["ode_method"],
                first_batch=mine.start + first))
        for block, accepted, proposed in blocks:
            x = block.numpy().astype(OUT_DTYPE)
            if not np.isfinite(x).all():
                exc = RunFailed(f"batch {mine.start + k}: the sampler produced NaN/inf (too few --steps, "
                                f"or a broken model); the {k} batch(es) before it are kept in {self.partial}")
                exc.collective = False
                raise exc
            store.write(k, {"configs": x, "mcmc": np.array([accepted, proposed], np.int64)},
                        {"batch": mine.start + k})
            self.segment_written()
            self.drawn += len(x)
            k += 1
            if sig.caught is not None and k < len(mine):
                raise Interrupted(f"{sig.caught} received: {k} of this rank's {len(mine)} batches are in "
                                  f"{self.partial}; rerun the same command with --resume to continue")
        self.time_s = time.perf_counter() - t0

    def merge(self, f) -> None:
        from ..run.segments import SegmentStore

        o = self.opts
        train = self.cfg.get("meta", {}).get("training_ensemble", {})
        points = train.get("container") == "walkers"  # (x, y) points of a CL model: no lattice extent L
        attrs = {**({} if points else {"L": list(self.site_shape)}),
                 **{k: train[k] for k in ("kappa", "lam", "sigma") if k in train}, "net": self.cfg["net"],
                 "dtype": np.dtype(OUT_DTYPE).name, "model": str(self.model.resolve()), "sde": self.cfg["sde"],
                 "training_ensemble": train or None, "mpi_size": self.comm.size, **provenance(self.command)}
        theory = train.get("theory") or ("phi4" if "kappa" in train else None)
        create_samples(f, n=o["n"], site_shape=self.site_shape, dtype=OUT_DTYPE, theory=theory, attrs=attrs)
        from ..run.segments import SegmentStore

        acc = np.zeros(2, np.int64)
        for r in range(self.comm.size):
            store = SegmentStore(self.partial, r)
            for k in store.indices():
                a, _ = store.read(k)
                if "mcmc" in a:
                    acc += np.asarray(a["mcmc"], np.int64)
        mcmc = {}
        if o["sampler"] == "mala":
            mcmc = {"mala_step": o["mala_step"], "burn_in": o["burn_in"], "thin": o["thin"],
                    "chains_per_batch": o["chains"] or o["batch"], "accepted": int(acc[0]), "proposed": int(acc[1]),
                    "acceptance_rate": float(acc[0] / acc[1]) if acc[1] else None,
                    "t_min": float(o.get("eps") or self.sde.eps_sample)}
        create_history(f, "sampler", attrs={**mcmc,
            "options": o, "sampler": o["sampler"], "steps": o["steps"], "seed": o["seed"],
            "batch": o["batch"], "denoise": o["denoise"],
            "snr": o["snr"] if o["sampler"] == "pc" else None,
            "ode_method": o["ode_method"] if o["sampler"] == "ode" else None, "net": self.cfg["net"],
            "eps": float(o.get("eps") or self.sde.eps_sample), "device": o["device"], "sample_time_s": round(self.time_s, 3)})
        row = 0
        for r in range(self.comm.size):
            store = SegmentStore(self.partial, r)
            mine = self._batches(r)
            if store.indices() != list(range(len(mine))):
                raise ValueError(f"{store.dir}: holds batches {store.indices()}, expected 0..{len(mine) - 1}")
            for k in range(len(mine)):
                a, _ = store.read(k)
                write_rows(f, row, a["configs"])
                row += len(a["configs"])
        if row != o["n"]:
            raise ValueError(f"{self.partial}: {row} samples found, expected {o['n']}")

    def summary(self) -> dict:
        return {"out": str(self.out), "n": self.opts["n"], "status": self.mode, "drawn": self.drawn,
                "time_s": self.time_s}
