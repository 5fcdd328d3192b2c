"""The one run-config schema: every bad value is one ConfigError naming its key, raised by
`parse_config` alone (before any mesh or FEM work); the CLI prints it as one line, exit 2."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from coupling.config import RunConfig, parse_clif_config, parse_config, parse_run_config
from coupling.training.checkpoint import config_hash
from fem.config import load_toml, parse_problem
from fem.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RUNS = ["lshape-vsn-galerkin.toml", "sinsin-vsn-sp.toml", "sinsin-ann-autograd.toml",
        "heat1d-vsn-sp.toml", "burgers1d-vsn-sp.toml", "bench-rve-elasticity.toml",
        "heat1d-clif.toml", "laplace2d-clif.toml", "diffusion3d-clif.toml"]


def example(name: str) -> dict:
    with open(EXAMPLES / name, "rb") as fh:
        return tomllib.load(fh)


def put(doc: dict, path: str, value) -> dict:
    """A copy of `doc` with the value at a dotted path (``problem.bcs[0].value``) set."""
    doc = copy.deepcopy(doc)
    parts = [int(p) if p.isdigit() else p for p in re.split(r"\.|\[|\]\.?", path) if p]
    table = doc
    for p in parts[:-1]:
        table = table[p] if isinstance(p, int) else table.setdefault(p, {})
    table[parts[-1]] = value
    return doc


NAN, INF = float("nan"), float("inf")
LSHAPE, SP, AUTOGRAD, HEAT, RVE, CLIF = (
    "lshape-vsn-galerkin.toml", "sinsin-vsn-sp.toml", "sinsin-ann-autograd.toml",
    "heat1d-vsn-sp.toml", "bench-rve-elasticity.toml", "heat1d-clif.toml")
# (example, dotted path, value, the key the error names)
BAD = [
    (LSHAPE, "mesh.size", NAN, "mesh.size"),
    (LSHAPE, "mesh.size", -0.1, "mesh.size"),
    (LSHAPE, "mesh.size", INF, "mesh.size"),
    (LSHAPE, "mesh.kind", "plate", "mesh.kind"),
    (LSHAPE, "mesh.corner_radius", 0.1, "mesh.corner_radius"),
    (LSHAPE, "mesh.refine", -1.0, "mesh.refine"),
    (RVE, "mesh.seed", 2**32, "mesh.seed"),
    (LSHAPE, "network.beta", 1.5, "network.beta"),
    (LSHAPE, "network.beta", NAN, "network.beta"),
    (LSHAPE, "network.threshold", NAN, "network.threshold"),
    (LSHAPE, "network.threshold", 0.0, "network.threshold"),
    (LSHAPE, "network.slope", 0.0, "network.slope"),
    (LSHAPE, "network.fourier_scale", INF, "network.fourier_scale"),
    (LSHAPE, "network.fourier_scale", 0.0, "network.fourier_scale"),
    (LSHAPE, "network.seed", 2**32, "network.seed"),
    (LSHAPE, "network.num_steps", 10**6, "network.num_steps"),
    (LSHAPE, "network.num_steps", True, "network.num_steps"),
    (LSHAPE, "network.hidden", [], "network.hidden"),
    (LSHAPE, "network.hidden", [64, -1], "network.hidden[1]"),
    (LSHAPE, "network.activation", "sigmoid", "network.activation"),  # VSN needs φ(0) = 0
    (LSHAPE, "network.neuron", "izhikevich", "network.neuron"),
    (LSHAPE, "network.in_dim", 2, "network.in_dim"),
    (LSHAPE, "network.output_scale", 0.0, "network.output_scale"),
    (LSHAPE, "network.output_scale", [1.0, 2.0], "network.output_scale"),
    (LSHAPE, "network.widths", [8], "network.widths"),
    (LSHAPE, "problem.source", "1/0", "problem.source"),
    (LSHAPE, "problem.source", "9.0**9**9**9", "problem.source"),
    (LSHAPE, "problem.bcs[0].value", "log(0)*x", "problem.bcs[0].value"),
    (LSHAPE, "problem.bcs[0].type", "robin", "problem.bcs[0].type"),
    (LSHAPE, "problem.bcs[0].where", "x0", "problem.bcs[0].where"),
    (LSHAPE, "problem.coefficients", {"domain": NAN}, "problem.coefficients.domain"),
    (LSHAPE, "problem.degree", 7, "problem.degree"),
    (LSHAPE, "problem.type", "poison", "problem.type"),
    (LSHAPE, "training.lr", INF, "training.lr"),
    (LSHAPE, "training.lr", -1e-3, "training.lr"),
    (LSHAPE, "training.seed", 2**32, "training.seed"),
    (LSHAPE, "training.seed", -1, "training.seed"),
    (LSHAPE, "training.steps", 1.5, "training.steps"),
    (LSHAPE, "training.dtype", "float16", "training.dtype"),
    (LSHAPE, "training.batch", 1.5, "training.batch"),  # neither a count nor a fraction
    (LSHAPE, "optimiser", {}, "optimiser"),
    (LSHAPE, "model", "snn", "model"),
    (LSHAPE, "energy.mac_pj", -1.0, "energy.mac_pj"),
    (LSHAPE, "inputs.interface_distance", 1, "inputs.interface_distance"),
    (SP, "problem.degree", 2, "problem.degree"),  # sp differentiates P1 nodal values
    (SP, "residual.k", 2, "residual.k"),
    (SP, "residual.neighbours", "radius", "residual.radius"),
    (SP, "boundary.mode", "exact", "boundary.mode"),
    (SP, "inputs.interface_distance", True, "inputs.interface_distance"),
    (AUTOGRAD, "network.neuron", "vsn", "residual.kind"),  # spikes have no input derivative
    (AUTOGRAD, "boundary.mode", "hard", "boundary.mode"),
    (HEAT, "boundary.mode", "hard", "boundary.mode"),
    (HEAT, "problem.time.theta", 1.5, "problem.time.theta"),
    (HEAT, "problem.time.dt", 0.3, "problem.time.dt"),
    (HEAT, "problem.time.initial", "exp(1000)", "problem.time.initial"),
    (HEAT, "problem.time.initial", ["x"], "problem.time.initial"),
    (RVE, "problem.materials.matrix.nu", 0.5, "problem.materials.matrix.nu"),
    (RVE, "problem.bcs[1].value", INF, "problem.bcs[1].value"),
    (RVE, "network.output_scale", [1.0, 1.0], "network.output_scale"),  # 3 components
    (CLIF, "clif.cfl", 2.0, "clif.cfl"),
    (CLIF, "clif.beta", NAN, "clif.beta"),
    (CLIF, "training.seed", 2**32, "training.seed"),
    (CLIF, "training.batch", 4, "training.batch"),  # not a C-LIF key
    (CLIF, "mesh.n", [1], "mesh.n[0]"),
    (CLIF, "clif.train_until", 5.0, "clif.train_until"),
    (CLIF, "problem.bcs[0].boundary", "y0", "problem.bcs[0].boundary"),  # 1D grid
    (LSHAPE, "training.device", "gpu", "training.device"),
    (LSHAPE, "training.threads", 0, "training.threads"),
    (LSHAPE, "training.compile", 1, "training.compile"),
    (LSHAPE, "training.cluster_cells", 0, "training.cluster_cells"),
]


@pytest.mark.parametrize(("name", "path", "value", "key"), BAD,
                         ids=[f"{b[0].split('-')[0]}:{b[1]}={b[2]!r}" for b in BAD])
def test_bad_value_is_one_config_error_naming_its_key(name, path, value, key):
    doc = put(example(name), path, value)
    with pytest.raises(ConfigError) as info:  # no mesh, no FEM; pytest-timeout guards a hang
        parse_config(doc)
    assert info.value.key == key, str(info.value)
    assert str(info.value).startswith(f"config {key}: ") and "\n" not in str(info.value)


def test_training_speed_keys_parse():
    """Element-sampled galerkin (a fraction or a count), compile, device, threads."""
    for batch in (0.25, 200):
        doc = put(example(LSHAPE), "training.batch", batch)
        for key, value in (("compile", True), ("device", "auto"), ("threads", 2),
                           ("refresh", 0), ("cluster_cells", 8)):
            doc = put(doc, f"training.{key}", value)
        t = parse_config(doc).training
        assert (t.batch, t.compile, t.device, t.threads, t.refresh) == (batch, True, "auto", 2, 0)


def test_bad_value_names_the_offending_value():
    err = pytest.raises(ConfigError, parse_config, put(example(LSHAPE), "training.lr", -0.5))
    assert str(err.value) == "config training.lr: expected a number > 0.0, got -0.5"
    err = pytest.raises(ConfigError, parse_config, put(example(LSHAPE), "network.seed", 2**32))
    assert str(err.value).endswith("got 4294967296")


@pytest.mark.parametrize("name", RUNS)
def test_resolved_config_revalidates_to_the_same_hash(name):
    cfg = parse_config(example(name))
    again = parse_config(cfg.resolved())
    assert again.resolved() == cfg.resolved()
    assert config_hash(again.resolved()) == config_hash(cfg.resolved())


def test_defaults_and_attribute_interface():
    cfg = parse_run_config(example(SP))
    assert isinstance(cfg, RunConfig)
    assert cfg.boundary.mode == "hard" and cfg.boundary.weight == 100.0  # sp default
    assert cfg.residual.kind == "sp" and cfg.training.seed == 0 and cfg.training.lr > 0
    assert cfg.mesh.kind == "rectangle" and cfg.problem.bcs[0].key == "problem.bcs[0]"
    assert cfg.resolved()["boundary"] == {"mode": "hard", "weight": 100.0, "lift": "harmonic"}
    with pytest.raises(ConfigError, match="model: expected \"network\""):
        parse_run_config(example(CLIF))
    with pytest.raises(ConfigError, match="model: expected \"clif\""):
        parse_clif_config(example(SP))


def test_validation_comes_before_mesh_and_fem_work():
    """A facet group that only the mesh could refute, and a bad lr: the lr is reported."""
    doc = put(example(LSHAPE), "problem.bcs[0].boundary", "no_such_group")
    doc["mesh"] = {"kind": "file", "path": "/nonexistent/mesh.msh"}
    assert parse_problem(doc["problem"]).bcs[0].boundary == "no_such_group"
    with pytest.raises(ConfigError, match=r"^config training\.lr: "):
        parse_config(put(doc, "training.lr", NAN))


def test_non_utf8_and_malformed_files_are_one_line_errors(tmp_path):
    bad = tmp_path / "latin1.toml"
    bad.write_bytes('[mesh]\nkind = "lshape" # Größe\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1\.toml: not UTF-8 text \(byte 0xf6"):
        load_toml(bad)
    broken = tmp_path / "broken.toml"
    broken.write_text("[mesh\nkind = 1\n")
    with pytest.raises(ConfigError, match=r"broken\.toml: invalid TOML"):
        load_toml(broken)
    with pytest.raises(ConfigError, match=r"nope\.toml: file not found"):
        load_toml(tmp_path / "nope.toml")


CLI = "import sys; from coupling.cli import main; sys.exit(main(sys.argv[1:]))"


@pytest.mark.parametrize(("path", "value", "key"), [
    ("training.lr", NAN, "training.lr"),
    ("network.beta", 2.0, "network.beta"),
    ("problem.source", "9.0**9**9**9", "problem.source"),
    (None, None, "latin1.toml"),
])
def test_cli_bad_config_exits_2_with_one_line(tmp_path, path, value, key):
    import tomli_w

    cfg = tmp_path / "latin1.toml"
    if path is None:
        cfg.write_bytes(b'[mesh]\nkind = "lshape" # Gr\xf6\xdfe\n')
    else:
        doc = put(example(LSHAPE), path, value)
        cfg.write_text(tomli_w.dumps(doc))
    res = subprocess.run([sys.executable, "-c", CLI, "train", str(cfg), "--out",
                          str(tmp_path / "run")], capture_output=True, text=True, timeout=300)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, res.stderr
    assert len(lines) == 1 and lines[0].startswith("neurofem: error: config "), res.stderr
    assert key in lines[0]
    assert not (tmp_path / "run").exists()


def test_specs_built_in_python_raise_the_same_error():
    """coupling.discretise builds a ResidualSpec from keywords: same error, same key."""
    from coupling.config import ResidualSpec

    assert ResidualSpec(kind="sp", k=8).k == 8
    with pytest.raises(ConfigError, match=r"^config residual\.k: expected an integer >= 3, got 1$"):
        ResidualSpec(kind="sp", k=1)
    with pytest.raises(ConfigError, match=r"^config residual\.ring: unknown key"):
        ResidualSpec(ring=2)


def test_network_table_is_the_one_mlpconfig_model():
    """[network] has one schema: the run config nests spiking's MLPConfig as it is."""
    from coupling.config import NetworkRun
    from spiking import MLPConfig

    assert NetworkRun.model_fields["network"].annotation is MLPConfig
    cfg = parse_config(put(example(LSHAPE), "network.num_steps", 3))
    assert isinstance(cfg.network, MLPConfig) and cfg.network.num_steps == 3
