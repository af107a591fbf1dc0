"""`qcdhpc train` and `qcdhpc toy-cumulants` refuse every bad argument or input before any work:
exit 2, one `qcdhpc VERB: error: ...` line on stderr naming the reason, no traceback, no input file
changed, no model written, no finished work replaced."""
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from qcdhpc.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
EXE = ROOT / ".venv" / "bin" / "qcdhpc"
CMD = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "qcdhpc"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

# small enough that a case which wrongly got through would still finish in a second or two
TRAIN_BASE = ["--epochs", "1", "--batch", "8", "--channels", "4", "--depth", "1", "--device", "cpu", "--quiet"]
TOY_BASE = ["--n-train", "64", "--epochs", "1", "--batch", "32", "--hidden", "8", "--n-layers", "1",
            "--n-samples", "64", "--steps", "2", "--quiet"]


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory):
    """A real 8x8 HMC ensemble (2 chains x 20 trajectories = 40 configurations)."""
    out = tmp_path_factory.mktemp("hmc") / "ens.h5"
    r = subprocess.run([*CMD, "hmc", "--L", "8", "--kappa", "0.21", "--lam", "0.022", "--nchains", "2",
                        "--ntraj", "20", "--therm", "5", "--seed", "1", "--out", str(out), "--quiet"],
                       env=ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and out.is_file(), r.stderr
    return out


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run_cli(capsys, argv):
    """main(argv) in-process: (exit code, stderr)."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse
        code = exc.code
    return code, capsys.readouterr().err


def assert_refused(code, err, verb, reason):
    assert code == 2, err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith(f"qcdhpc {verb}: error: "), err
    assert reason in errors[0], err
    assert f"usage: qcdhpc {verb}" in err, err


# ------------------------------------------------------------------------------------------ train

def _cuda_available() -> bool:
    return torch.cuda.is_available()


BAD_TRAIN_OPTIONS = [
    (["--epochs", "0"], "--epochs must be >= 1"),
    (["--epochs", "-3"], "--epochs must be >= 1"),
    (["--batch", "0"], "--batch must be >= 1"),
    (["--batch", "-8"], "--batch must be >= 1"),
    (["--lr", "0"], "--lr must be positive and finite"),
    (["--lr", "-0.001"], "--lr must be positive and finite"),
    (["--lr", "nan"], "--lr must be positive and finite"),
    (["--lr", "inf"], "--lr must be positive and finite"),
    (["--warmup", "-1"], "--warmup must be >= 0"),
    (["--grad-clip", "0"], "--grad-clip must be positive and finite"),
    (["--grad-clip", "-1"], "--grad-clip must be positive and finite"),
    (["--grad-clip", "inf"], "--grad-clip must be positive and finite"),
    (["--grad-clip", "nan"], "--grad-clip must be positive and finite"),
    (["--ema-decay", "1"], "--ema-decay must be in [0, 1)"),
    (["--ema-decay", "-0.1"], "--ema-decay must be in [0, 1)"),
    (["--ema-decay", "nan"], "--ema-decay must be in [0, 1)"),
    (["--channels", "0"], "--channels must be >= 1"),
    (["--depth", "-1"], "--depth must be >= 0"),
    (["--n-res", "0"], "--n-res must be >= 1"),
    (["--checkpoint-every", "0"], "--checkpoint-every must be >= 1"),
    (["--max-configs", "0"], "--max-configs must be >= 1"),
    (["--zero-mode-weight", "0"], "--zero-mode-weight must be positive and finite"),
    (["--hidden", "0"], "--hidden must be >= 1"),
    (["--n-layers", "0"], "--n-layers must be >= 1"),
    (["--eps-t", "0"], "--eps-t must be in (0, 1)"),
    (["--eps-t", "1"], "--eps-t must be in (0, 1)"),
    (["--net", "energy"], "--net energy is for point data"),
    (["--net", "mlp"], "--net mlp is for point data"),
    (["--depth", "4"], "L0 = 8, L1 = 8"),  # 8 is not a multiple of 2**4
    (["--depth", "3"], None),  # 8 = 2**3: fine (not refused: see below)
    (["--depth", "100"], "multiples of 2**100"),
    (["--sigma-min", "0.1"], "--sigma-min needs --sigma-max"),
    (["--sigma-max", "50", "--sde", "vp"], "apply to the VE SDE only"),
    (["--sigma-max", "0.001"], "need 0 < --sigma-min < --sigma-max"),
    (["--sigma-max", "10", "--sigma-min", "0"], "need 0 < --sigma-min < --sigma-max"),
    (["--sigma-max", "inf"], "need 0 < --sigma-min < --sigma-max"),
    (["--sigma-max", "nan"], "need 0 < --sigma-min < --sigma-max"),
    (["--sigma-max", "10", "--sigma-min", "nan"], "need 0 < --sigma-min < --sigma-max"),
    (["--amp", "bf16"], "--amp bf16 needs a CUDA device"),
    (["--amp", "fp16"], "--amp fp16 needs a CUDA device"),
    (["--device", "gpu"], "--device must be auto, cpu, cuda or cuda:N (got 'gpu')"),
    (["--device", "meta"], "--device must be auto, cpu, cuda or cuda:N"),
    (["--device", "cuda:99"], "cuda:99"),
    (["--seed", "-1"], "--seed must be in [0, 2**63)"),
    (["--seed", str(2 ** 63)], "--seed must be in [0, 2**63)"),
]


def _setup_out(kind, tmp_path, ensemble):
    """(ensemble path, --out, extra args, reason, files that must keep their bytes) for an --out case."""
    if kind == "foreign-dir":
        d = tmp_path / "mine"
        d.mkdir()
        (d / "notes.txt").write_text("not a run\n")
        return ensemble, d, [], "not a qcdhpc run directory", [d / "notes.txt"]
    if kind == "foreign-config-json":
        d = tmp_path / "mine"
        d.mkdir()
        (d / "config.json").write_text('{"lr": 1}\n')
        return ensemble, d, [], "not a qcdhpc run directory", [d / "config.json"]
    if kind == "dev-null":
        return ensemble, "/dev/null", [], "/dev/null exists and is not a directory", []
    if kind == "out-is-ensemble":
        return ensemble, ensemble, [], "which is the input ensemble", []
    if kind == "model-is-ensemble":
        ens = tmp_path / "ens.pt"
        ens.write_bytes(ensemble.read_bytes())
        return ens, ens, [], "which is the input ensemble", [ens]
    if kind == "model-is-ensemble-via-link":
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "model.pt").symlink_to(ensemble)
        return ensemble, tmp_path / "run", [], "which is the input ensemble", []
    if kind == "model-is-dir":
        (tmp_path / "m.pt").mkdir()
        return ensemble, tmp_path / "m.pt", [], "is not a regular file", []
    if kind == "model-links-to-dev-null":
        (tmp_path / "m.pt").symlink_to("/dev/null")
        return ensemble, tmp_path / "m.pt", [], "is not a regular file", []
    if kind == "model-exists":  # a finished model without its run: never replaced
        (tmp_path / "m.pt").write_bytes(b"a model someone trained")
        return ensemble, tmp_path / "m.pt", [], "nothing to resume", [tmp_path / "m.pt"]
    if kind == "model-exists-resume":
        (tmp_path / "m.pt").write_bytes(b"a model someone trained")
        return ensemble, tmp_path / "m.pt", ["--resume"], "nothing to resume", [tmp_path / "m.pt"]
    if kind == "under-a-file":
        return ensemble, Path(ensemble) / "run", [], "is not a directory", []
    if kind == "read-only-fs":  # sysfs: no file can be created there, not even by root
        if os.access("/sys", os.W_OK) and _can_create_in("/sys"):
            pytest.skip("/sys is writable here")
        return ensemble, "/sys/qcdhpc-train-test/run", [], "cannot write in /sys", []
    if kind == "read-only-dir":
        d = tmp_path / "ro"
        d.mkdir()
        d.chmod(0o555)
        if _can_create_in(d):
            d.chmod(0o755)
            pytest.skip("permissions do not stop this user (root)")
        return ensemble, d / "run", [], f"cannot write in {d}", []
    if kind == "checkpoint-without-resume":
        d = tmp_path / "run"
        d.mkdir()
        (d / "checkpoint.pt").write_bytes(b"junk")
        return ensemble, d, [], "pass --resume to continue that run", [d / "checkpoint.pt"]
    if kind == "checkpoint-is-dir":
        d = tmp_path / "run"
        (d / "checkpoint.pt").mkdir(parents=True)
        return ensemble, d, ["--resume"], "checkpoint.pt is not a qcdhpc training checkpoint", []
    raise AssertionError(kind)


def _can_create_in(d) -> bool:
    try:
        probe = Path(d) / ".qcdhpc-test-probe"
        probe.write_bytes(b"")
        probe.unlink()
        return True
    except OSError:
        return False


BAD_OUTS = ["foreign-dir", "foreign-config-json", "dev-null", "out-is-ensemble", "model-is-ensemble",
            "model-is-ensemble-via-link", "model-is-dir", "model-links-to-dev-null", "model-exists",
            "model-exists-resume", "under-a-file", "read-only-fs", "read-only-dir",
            "checkpoint-without-resume", "checkpoint-is-dir"]


def _junk_checkpoint(kind, path: Path):
    if kind == "random-bytes":
        path.write_bytes(os.urandom(4096))
    elif kind == "zero-bytes":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is not a checkpoint\n")
    elif kind == "truncated":
        torch.save({"model": {"w": torch.randn(4096)}, "epoch": 3}, path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "a-tensor":
        torch.save(torch.zeros(3), path)
    elif kind == "wrong-dict":
        torch.save({"config": {}, "model": {}, "epoch": 1}, path)
    elif kind == "wrong-types":
        torch.save({"config": [], "data_shape": [40, 8, 8], "epoch": "1", "step": 0, "model": {}, "ema": {},
                    "optimizer": {}, "scaler": {}, "rng": [], "torch_rng": torch.zeros(1), "log": []}, path)
    elif kind == "foreign-run":  # the right structure, written with other options
        torch.save({"config": {}, "data_shape": [40, 8, 8], "epoch": 1, "step": 5,
                    "model": {"w": torch.zeros(2)}, "ema": {"decay": 0.9, "num_updates": 1,
                                                            "shadow": {"w": torch.zeros(2)}},
                    "optimizer": {}, "scaler": {}, "rng": [torch.zeros(1)], "torch_rng": torch.zeros(1),
                    "log": []}, path)
    else:
        raise AssertionError(kind)


JUNK = ["random-bytes", "zero-bytes", "text", "truncated", "a-tensor", "wrong-dict", "wrong-types"]

TRAIN_CASES = ([pytest.param("option", args, reason, id="opt" + "".join(args)) for args, reason in BAD_TRAIN_OPTIONS
                if reason is not None]
               + [pytest.param("cuda", ["--device", "cuda"], "CUDA", id="device-cuda-without-cuda",
                               marks=pytest.mark.skipif(_cuda_available(), reason="CUDA is available"))]
               + [pytest.param("out", kind, None, id="out-" + kind) for kind in BAD_OUTS]
               + [pytest.param("checkpoint", kind, "is not a qcdhpc training checkpoint", id="ckpt-" + kind)
                  for kind in JUNK]
               + [pytest.param("checkpoint", "foreign-run", "cannot resume with different options/data",
                               id="ckpt-foreign-run")])


@pytest.mark.parametrize("what, case, reason", TRAIN_CASES)
def test_train_refuses_before_any_work(capsys, tmp_path, ensemble, what, case, reason):
    ens, out, extra, keep = ensemble, tmp_path / "run", [], []
    if what in ("option", "cuda"):
        extra = case
    elif what == "out":
        ens, out, extra, reason, keep = _setup_out(case, tmp_path, ensemble)
    else:  # --resume with a checkpoint.pt that is not one
        out.mkdir()
        _junk_checkpoint(case, out / "checkpoint.pt")
        extra, keep = ["--resume"], [out / "checkpoint.pt"]
    before = {p: sha256(p) for p in [ensemble, ens, *keep]}
    listing = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    code, err = run_cli(capsys, ["train", ens, "--out", out, *TRAIN_BASE, *extra])
    assert_refused(code, err, "train", reason)
    if what == "checkpoint":
        assert "--restart-stale" in err  # the way out is named
    assert {p: sha256(p) for p in before} == before  # no input (or earlier output) changed
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == listing  # nothing written


def test_train_accepts_what_it_should_and_guards_finished_work(capsys, tmp_path, ensemble):
    """The boundary cases just inside the allowed range train; a corrupt checkpoint is set aside with
    --restart-stale; a finished run is neither shortened nor replaced."""
    # depth 3 on 8x8 (bottleneck 1x1), batch larger than the 40 configurations (clamped), an empty
    # existing directory, a junk checkpoint that --restart-stale moves away
    run = tmp_path / "run"
    run.mkdir()
    _junk_checkpoint("random-bytes", run / "checkpoint.pt")
    junk = sha256(run / "checkpoint.pt")
    argv = ["train", ensemble, "--out", run, "--epochs", "2", "--batch", "64", "--channels", "4", "--depth", "3",
            "--warmup", "0", "--ema-decay", "0", "--seed", str(2 ** 63 - 1), "--device", "cpu", "--quiet"]
    with pytest.warns(UserWarning, match="not a qcdhpc training checkpoint.*checkpoint.stale.pt"):
        code, err = run_cli(capsys, [*argv, "--resume", "--restart-stale"])
    assert code == 0, err
    assert sha256(run / "checkpoint.stale.pt") == junk
    model = sha256(run / "model.pt")
    ck = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ck["epoch"] == 2 and ck["step"] == 2  # one batch of all 40 configurations per epoch
    # the finished run: fewer epochs on resume, or no --resume, are refused and change nothing
    code, err = run_cli(capsys, [*[a if a != "2" else "1" for a in argv], "--resume"])
    assert_refused(code, err, "train", "has already trained 2 epochs")
    code, err = run_cli(capsys, argv)
    assert_refused(code, err, "train", "pass --resume to continue that run")
    assert sha256(run / "model.pt") == model
    # an empty existing directory is a fine new run directory
    (tmp_path / "empty").mkdir()
    code, err = run_cli(capsys, ["train", ensemble, "--out", tmp_path / "empty", *TRAIN_BASE])
    assert code == 0, err
    assert (tmp_path / "empty" / "model.pt").is_file()


@pytest.mark.parametrize("extra, reason", [
    (["--epochs", "0"], "--epochs must be >= 1"),
    (["--resume"], "is not a qcdhpc training checkpoint"),
])
def test_train_refusal_as_a_process(tmp_path, ensemble, extra, reason):
    """The same through the installed entry point: exit status 2, one line, no traceback."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(os.urandom(100))
    before = sha256(ensemble)
    r = subprocess.run([*CMD, "train", str(ensemble), "--out", str(run), *TRAIN_BASE, *extra], env=ENV,
                       capture_output=True, text=True, timeout=300)
    assert_refused(r.returncode, r.stderr, "train", reason)
    assert sha256(ensemble) == before and not (run / "model.pt").exists()


# ---------------------------------------------------------------------------------- toy-cumulants

BAD_TOY_OPTIONS = [
    (["--n-train", "1"], "--n-train must be >= 2"),
    (["--n-train", "0"], "--n-train must be >= 2"),
    (["--epochs", "0"], "--epochs must be >= 1"),
    (["--batch", "0"], "--batch must be >= 1"),
    (["--lr", "0"], "--lr must be positive and finite"),
    (["--lr", "nan"], "--lr must be positive and finite"),
    (["--lr", "inf"], "--lr must be positive and finite"),
    (["--lr", "-1"], "--lr must be positive and finite"),
    (["--hidden", "0"], "--hidden must be >= 1"),
    (["--n-layers", "0"], "--n-layers must be >= 1"),
    (["--n-samples", "1"], "--n-samples must be >= 2"),
    (["--steps", "0"], "--steps must be >= 1"),
    (["--sdes", ""], "give at least one of ve, vp"),
    (["--sdes", " , "], "give at least one of ve, vp"),
    (["--sdes", "ve,sub-vp"], "unknown SDE 'sub-vp'"),
    (["--seed", "-1"], "--seed must be in [0, 2**63)"),
    (["--seed", str(2 ** 63)], "--seed must be in [0, 2**63)"),
]


def _toy_out(kind, tmp_path):
    if kind == "dir":
        (tmp_path / "t.json").mkdir()
        return tmp_path / "t.json", "is a directory", []
    if kind == "dev-null":
        return Path("/dev/null"), "is not a regular file", []
    if kind == "foreign-file":
        (tmp_path / "t.json").write_text('{"something": "else"}\n')
        return tmp_path / "t.json", "is not a toy-cumulants table", [tmp_path / "t.json"]
    if kind == "under-a-file":
        (tmp_path / "f").write_text("x")
        return tmp_path / "f" / "t.json", "is not a directory", [tmp_path / "f"]
    if kind == "read-only-fs":
        if _can_create_in("/sys"):
            pytest.skip("/sys is writable here")
        return Path("/sys/qcdhpc-toy-test/t.json"), "cannot write in /sys", []
    if kind == "read-only-dir":
        d = tmp_path / "ro"
        d.mkdir()
        d.chmod(0o555)
        if _can_create_in(d):
            d.chmod(0o755)
            pytest.skip("permissions do not stop this user (root)")
        return d / "t.json", f"cannot write in {d}", []
    raise AssertionError(kind)


TOY_CASES = ([pytest.param("option", args, reason, id="opt" + "".join(args)) for args, reason in BAD_TOY_OPTIONS]
             + [pytest.param("out", kind, None, id="out-" + kind)
                for kind in ("dir", "dev-null", "foreign-file", "under-a-file", "read-only-fs", "read-only-dir")])


@pytest.mark.parametrize("what, case, reason", TOY_CASES)
def test_toy_cumulants_refuses_before_any_work(capsys, tmp_path, what, case, reason):
    out, keep = tmp_path / "t.json", []
    extra = case if what == "option" else []
    if what == "out":
        out, reason, keep = _toy_out(case, tmp_path)
    before = {p: sha256(p) for p in keep}
    listing = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    code, err = run_cli(capsys, ["toy-cumulants", *TOY_BASE, *extra, "--out", out])
    assert_refused(code, err, "toy-cumulants", reason)
    assert {p: sha256(p) for p in before} == before
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == listing


def test_toy_cumulants_replaces_its_own_table(capsys, tmp_path):
    import json

    out = tmp_path / "t.json"
    for _ in range(2):  # the second run replaces the first one's table
        code, err = run_cli(capsys, ["toy-cumulants", *TOY_BASE, "--sdes", "ve", "--out", out])
        assert code == 0, err
    table = json.loads(out.read_text())
    assert table["format"] == "qcdhpc.toy-cumulants" and [r["sde"] for r in table["rows"]] == [None, "ve"]
