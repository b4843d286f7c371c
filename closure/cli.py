"""The ``closure`` command (also ``python -m closure``): data, training, the table, a model's card.

    closure data generate --scale micro --n 200 --seed 0 --out data/micro.h5
    closure data show data/micro.h5 | manifest data/micro.h5
    closure train configs/train/default_small.toml [--stage S ...] [--restart]
    closure table build MODEL_DIR | show FILE | export [MODEL_DIR]
    closure info [MODEL_DIR] [--calibrate]

Errors print one line ``error: ...`` on stderr and exit with status 2 (``--debug``: with the
traceback). The module entry points ``python -m closure.data``, ``python -m closure.train`` and
``python -m closure.table`` run the same subcommands with the exit statuses they always had.
Heavy imports (torch, the generator, the trainer) happen inside the subcommand that needs them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["build_parser", "main", "run_module"]

_WAIT = ("OMP_WAIT_POLICY", "PASSIVE")


class _Parser(argparse.ArgumentParser):
    """Usage errors as one ``error:`` line and status 2, like every other error here."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message}\n")


# ---------------------------------------------------------------------------------------------
# closure data

def _add_data(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="data_cmd", required=True)
    g = sub.add_parser("generate", help="generate or resume a data set")
    g.add_argument("--scale", choices=("micro", "meso"), required=True)
    g.add_argument("--n", type=int, required=True, help="number of samples")
    g.add_argument("--seed", type=int, required=True, help="data-set seed")
    g.add_argument("--out", required=True, help="output HDF5 file (resumed if it exists)")
    g.add_argument("--config", help="TOML file overriding the scale's defaults")
    g.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="SECTION.KEY=VALUE", help="override one config value (repeatable)")
    g.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    g.add_argument("--threads", type=int, default=1,
                   help="Numba threads per worker process when --workers > 1 (default 1)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--no-manifest", action="store_true", help="do not write the manifest")
    g.add_argument("--stop-after", type=int, default=None, help=argparse.SUPPRESS)
    s = sub.add_parser("show", help="print a summary and write a PNG of sample frames")
    s.add_argument("file")
    s.add_argument("--png", help="PNG path (default: FILE with .png)")
    s.add_argument("--samples", type=int, default=3, help="samples to plot (default 3)")
    s.add_argument("--frames", type=int, default=6, help="frames per sample (default 6)")
    s.add_argument("--json", action="store_true", help="print the summary as JSON")
    m = sub.add_parser("manifest", help="(re)write FILE.manifest.json")
    m.add_argument("file")
    m.add_argument("--out", help="manifest path (default FILE.manifest.json)")


def _run_data(a: argparse.Namespace) -> int:
    if a.data_cmd == "generate":
        from closure.data.config import load_data_config
        from closure.data.generate import generate

        cfg = load_data_config(a.scale, a.config, a.overrides)
        generate(cfg, a.n, a.seed, a.out, workers=a.workers, threads_per_worker=a.threads,
                 progress=not a.no_progress, stop_after=a.stop_after,
                 manifest=not a.no_manifest)
        return 0
    if a.data_cmd == "show":
        from closure.data.show import show

        summ, png = show(a.file, png=a.png, n_samples=a.samples, n_frames=a.frames,
                         echo=not a.json)
        if a.json:
            print(json.dumps(summ, indent=1, default=str))
        print(f"wrote {png}", file=sys.stderr)
        return 0
    from closure.data.dataset import write_manifest

    print(write_manifest(a.file, a.out))
    return 0


# ---------------------------------------------------------------------------------------------
# closure train

def _add_train(p: argparse.ArgumentParser) -> None:
    from closure.training.config import STAGES

    p.add_argument("config", help="TOML training config (see configs/train/)")
    p.add_argument("--stage", action="append", choices=STAGES,
                   help="run only this stage (repeatable); default: run.stages of the config")
    p.add_argument("--restart", action="store_true",
                   help="ignore existing checkpoints and train the stages from scratch")
    p.add_argument("--out-dir", help="override run.out_dir")
    p.add_argument("--seed", type=int, help="override run.seed")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _run_train(a: argparse.Namespace) -> int:
    os.environ.setdefault(*_WAIT)  # before torch starts its OpenMP threads (closure/train.py)
    from closure.training.config import load_config
    from closure.training.stages import run_stages

    cfg = load_config(a.config)
    if a.out_dir:
        cfg["run"]["out_dir"] = str(Path(a.out_dir).resolve())
    if a.seed is not None:
        cfg["run"]["seed"] = a.seed
    if a.no_progress:
        cfg["run"]["progress"] = False
    dirs = run_stages(cfg, a.stage, resume=not a.restart)
    for stage, d in dirs.items():
        metrics = json.loads((d / "model_card.json").read_text())["metrics"]
        parts = [f"{name}.{m}={v:.4g}" for name, block in metrics.items()
                 if name.startswith(("micro_val", "meso_test")) and isinstance(block, dict)
                 for m, v in block.items() if m.startswith("rmse") and isinstance(v, float)]
        print(f"{stage}: {d}" + "".join(f"\n  {p}" for p in parts))
    return 0


# ---------------------------------------------------------------------------------------------
# closure table

def _add_table(p: argparse.ArgumentParser) -> None:
    # defaults of the builder's own (closure.table) filled in when it runs: building this
    # parser imports no torch
    sub = p.add_subparsers(dest="table_cmd", required=True)
    b = sub.add_parser("build", help="build MODEL_DIR/closure_table.h5")
    b.add_argument("model_dir")
    b.add_argument("--out", default=None, help="output file (default MODEL_DIR/closure_table.h5)")
    b.add_argument("--tol", type=float, default=0.01)
    b.add_argument("--area-floor", type=float, default=0.01)
    b.add_argument("--n-initial", type=int, default=None,
                   help="initial uniform Ps nodes (default: closure.table.DEFAULT_N_INITIAL)")
    b.add_argument("--max-nodes", type=int, default=None,
                   help="node cap (default: closure.table.DEFAULT_MAX_NODES)")
    b.add_argument("--n-micro", type=int, default=4)
    b.add_argument("--n-samples", type=int, default=1)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    b.add_argument("--time-budget", type=float, default=0.0,
                   help="seconds after which no interval is split any more (0: no limit)")
    s = sub.add_parser("show", help="print a table file's summary")
    s.add_argument("path")
    e = sub.add_parser("export", help="write MODEL_DIR/closure_table.bin for the C API "
                                      "(docs/capi.md); build does it too")
    e.add_argument("model_dir", nargs="?", default=None,
                   help="model directory (default: the shipped closure/weights/default)")
    e.add_argument("--out", default=None, help="output file (default MODEL_DIR/closure_table.bin)")


def _table_line(tab: Any) -> str:
    m = tab.meta
    err = m.get("max_heldout_error")
    return (f"{len(tab.nodes)} Ps nodes {tab.nodes.min() / 1e9:.2f}-{tab.nodes.max() / 1e9:.2f} "
            f"GPa, {tab.area.shape[1]} t nodes (dt {tab.dt:.3g} s); max held-out error "
            f"{'?' if err is None else f'{err:.4f}'} (tol {m.get('tol')}), converged "
            f"{m.get('converged')}, built in {m.get('build_seconds', 0):.0f} s")


def _run_table(a: argparse.Namespace) -> int:
    from closure.table import DEFAULT_MAX_NODES, DEFAULT_N_INITIAL, TABLE_FILE, Table, build_table

    if a.table_cmd == "show":
        print(f"{a.path}: {_table_line(Table.load(a.path))}")
        return 0
    if a.table_cmd == "export":
        from closure.capi import export_table

        print(f"wrote {export_table(a.model_dir, a.out)}")
        return 0
    os.environ.setdefault(*_WAIT)
    import torch

    from closure.api import Closure

    if a.threads:
        torch.set_num_threads(a.threads)
    c = Closure.load(a.model_dir, table=False, n_micro=a.n_micro)
    out = Path(a.out) if a.out else Path(a.model_dir) / TABLE_FILE
    run = c.runner
    print(f"building {out}: envelope {run.envelope[0] / 1e9:.2f}-{run.envelope[1] / 1e9:.2f} "
          f"GPa, horizon {run.horizon} steps, {run.n_micro} microstructures, grid {run.grid}",
          file=sys.stderr)
    tab = build_table(run, n_initial=DEFAULT_N_INITIAL if a.n_initial is None else a.n_initial,
                      tol=a.tol, area_floor=a.area_floor,
                      max_nodes=DEFAULT_MAX_NODES if a.max_nodes is None else a.max_nodes,
                      n_samples=a.n_samples, seed=a.seed,
                      time_budget=a.time_budget)
    tab.save(out)
    m = tab.meta
    print(f"wrote {out}: {len(tab.nodes)} Ps nodes, max held-out error "
          f"{m['max_heldout_error']:.4f} (tol {a.tol}, converged {m['converged']}), random "
          f"checks {m['max_random_check_error']:.4f}, {m['build_seconds']:.0f} s")
    if out == Path(a.model_dir) / TABLE_FILE:  # the C API's copy beside it (closure.capi)
        from closure.capi import export_table

        print(f"wrote {export_table(a.model_dir)}")
    return 0


# ---------------------------------------------------------------------------------------------
# closure info

def _add_info(p: argparse.ArgumentParser) -> None:
    p.add_argument("model_dir", nargs="?", default=None,
                   help="model directory (default: the shipped closure/weights/default)")
    p.add_argument("--calibrate", action="store_true",
                   help="time the kernel families on C++ and PyTorch again (auto dispatch) "
                        "instead of using the cached choice")


def kernel_path() -> str:
    """The kernel path ``auto`` (or ``$CLOSURE_KERNELS``) picks on this machine, in words."""
    from closure import kernels

    be = kernels.Backend()
    how = "auto" if not be.explicit else f"${kernels.ENV_VAR}={be.requested}"
    if be.name == "cpp":
        mod = kernels._module("cpp")
        what = (f"cpp (C++/OpenMP, {mod.isa_active()} path of {'/'.join(mod.isa_supported())}, "
                f"{mod.max_threads()} threads)")
    elif be.name == "cuda":
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "a GPU"
        what = f"cuda (CUDA kernels on {gpu}; small host batches on C++)"
    else:
        import torch

        what = f"torch (PyTorch reference, {torch.get_num_threads()} threads)"
    return f"{what} [{how}; available: {', '.join(kernels.available_backends())}]"


def kernels_dispatch(runner: Any, refresh: bool = False) -> str:
    """Per kernel family, which implementation ``runner`` uses (under auto on the C++ backend:
    the faster of C++ and PyTorch here, measured once and cached), in words."""
    from closure.kernels import calibrate

    recs = runner.kernel_choices(refresh=refresh)
    line = calibrate.describe(recs)
    if any(r.get("source") in ("measured", "cached") for r in recs.values()):
        line += f" [cache {calibrate.cache_file()}]"
    return line


def _run_info(a: argparse.Namespace) -> int:
    from closure.api import DEFAULT_MODEL_DIR, Closure
    from closure.table import TABLE_FILE, Table, TableError

    path = DEFAULT_MODEL_DIR if a.model_dir is None else Path(a.model_dir)
    c = Closure.load(path, table=False)
    run, card = c.runner, c.runner.card
    w = card.get("weights", {})
    arch = card.get("architecture", {})
    tok, dyn = arch.get("tokenizer", {}), arch.get("dynamics", {})
    lines = [
        ("model", f"{path}"),
        ("card", f"{card.get('kind')} model, created {card.get('created_utc', '?')}, "
                 f"{w.get('n_parameters', 0) / 1e6:.2f} M parameters, weights sha256 "
                 f"{str(w.get('sha256', ''))[:12]}..., torch "
                 f"{card.get('versions', {}).get('torch', '?')}"),
        ("network", f"tokenizer base {tok.get('base_channels')} x latent "
                    f"{tok.get('latent_channels')}; dynamics base {dyn.get('base_channels')}, "
                    f"depth {dyn.get('depth')}, reps {dyn.get('reps')}; "
                    f"{arch.get('substeps')} substeps per meso step"),
    ]
    for role, rec in card.get("data", {}).items():
        if isinstance(rec, dict):
            lines.append((f"data {role}", f"{rec.get('path', '?')} ({rec.get('n_samples', '?')} "
                                          f"samples, grid {rec.get('grid')}, dt "
                                          f"{rec.get('dt')} s)"))
    table_line, envelope, source = "none (online mode only; build it: closure table build " \
        f"{path})", run.envelope, "meso training data or generator range"
    if (path / TABLE_FILE).exists():
        try:
            tab = Table.load(path / TABLE_FILE)
            tab.check_fingerprint(run.fingerprint(), path / TABLE_FILE)
            table_line = f"{TABLE_FILE}: {_table_line(tab)}"
            envelope, source = tab.envelope, "stored in the table"
        except (TableError, OSError) as exc:
            table_line = f"{TABLE_FILE} not usable: {exc}"
    lines += [
        ("envelope", f"Ps {envelope[0] / 1e9:.2f}-{envelope[1] / 1e9:.2f} GPa ({source})"),
        ("horizon", f"{run.horizon} meso steps x {run.dt_meso * 1e9:.3g} ns = "
                    f"{run.horizon * run.dt_meso * 1e9:.3g} ns after the shock; grid "
                    f"{run.grid[0]}x{run.grid[1]}, threshold {run.threshold:g} K"),
        ("table", table_line),
        ("kernels", kernel_path()),
        ("dispatch", kernels_dispatch(run, refresh=a.calibrate)),
    ]
    width = max(len(k) for k, _ in lines)
    for k, v in lines:
        print(f"{k:<{width}}  {v}")
    return 0


# ---------------------------------------------------------------------------------------------
# closure serve

_DEVICES = {"auto": None, "cpu": "cpp", "cuda": "cuda"}


def _add_serve(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None,
                   help="model directory (default: the shipped closure/weights/default)")
    p.add_argument("--device", choices=sorted(_DEVICES), default="auto",
                   help="kernels: auto (GPU if any, else the faster CPU path), cpu (C++), "
                        "cuda")
    p.add_argument("--no-table", action="store_true", help="do not load the response table")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds a worker waits for requests (x3) and for sends "
                        "(default $MACRO_MPI_TIMEOUT or 600)")


def _run_serve(a: argparse.Namespace) -> int:
    """Closure worker rank of an MPMD job (docs/protocol.md): handshake, then answer queries."""
    from closure.api import Closure
    from macro.parallel.comm import install_excepthook
    from macro.parallel.mpmd import serve_workers

    install_excepthook()
    c = Closure.load(a.model, table=not a.no_table, backend=_DEVICES[a.device])
    serve_workers(c, timeout=a.timeout)
    return 0


# ---------------------------------------------------------------------------------------------

_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None],
                           Callable[[argparse.Namespace], int]]] = {
    "data": ("pore-collapse data sets: generate, show, manifest", _add_data, _run_data),
    "train": ("train the closure models from a TOML config", _add_train, _run_train),
    "table": ("build or show the closure's (Ps, t) response table", _add_table, _run_table),
    "info": ("a model directory: card, envelope, horizon, table, kernel path", _add_info,
             _run_info),
    "serve": ("closure worker ranks of an MPMD job (mpiexec -n K app : -n M closure serve)",
              _add_serve, _run_serve),
}


def build_parser(prog: str = "closure", only: str | None = None) -> argparse.ArgumentParser:
    """The ``closure`` command's parser (subcommands data, train, table, info); with ``only``,
    the arguments of that subcommand alone (the others' may import torch)."""
    ap = _Parser(prog=prog, description="Latent meso-scale hotspot closure: data, training, "
                                        "response table, model summary.")
    ap.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_, add, run) in _COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if only is None or only == name:
            add(p)
        p.set_defaults(run=run)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``closure`` / ``python -m closure``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = build_parser(only=next((t for t in argv if t in _COMMANDS), None))
    args = ap.parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - every error becomes one line (or a traceback)
        if args.debug:
            traceback.print_exc()
        msg = " ".join(str(exc).split()) or type(exc).__name__
        print(f"error: {msg}", file=sys.stderr)
        return 2


def run_module(command: str, argv: Sequence[str] | None, prog: str,
               statuses: Sequence[tuple[type[BaseException] | tuple[type[BaseException], ...],
                                        int]] = ()) -> int:
    """A subcommand as a module entry point (``python -m closure.<command>``): errors of the
    classes in ``statuses`` print one ``error:`` line and return their status (the first
    match), others propagate (a traceback), as those entry points always did."""
    _, add, run = _COMMANDS[command]
    ap = _Parser(prog=prog)
    add(ap)
    args = ap.parse_args(argv)
    try:
        return run(args)
    except Exception as exc:
        for cls, status in statuses:
            if isinstance(exc, cls):
                print(f"error: {exc}", file=sys.stderr)
                return status
        raise


if __name__ == "__main__":
    sys.exit(main())
