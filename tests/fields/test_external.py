"""Optional-package handling and backend selection (hold.utils.external), on any machine."""

from __future__ import annotations

import types
import warnings

import pytest
import torch

from hold.config.fields import EncodingConfig
from hold.fields.encoding import HashGridEncoding
from hold.fields.hashgrid import TorchHashGrid
from hold.utils import external
from hold.utils.external import BackendFallbackWarning, MissingDependencyError, no_cuda
from hold.utils.external import resolve_backend as resolve


def resolve_backend(requested: str) -> str:
    """The hash-grid encoding's choice (as ``HashGridEncoding`` makes it)."""
    kw = dict(feature="hash-grid encoding", setting="backend", fallback="torch", accelerated="tcnn")
    return resolve(requested, **kw, package="tinycudann", blocker=no_cuda)


@pytest.fixture
def packages(monkeypatch):
    """Pretend which optional packages import: ``packages(tinycudann=True, cuda=False)``."""
    real_import = external.importlib.import_module

    def configure(cuda: bool = False, **present: bool):
        def fake_import(name: str):
            if name in present:
                if present[name]:
                    return types.ModuleType(name)
                raise ImportError(f"No module named '{name}'")
            return real_import(name)

        external._reset_for_tests()
        monkeypatch.setattr(external.importlib, "import_module", fake_import)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)

    yield configure
    external._reset_for_tests()


def test_missing_package_is_none_not_an_error(packages):
    packages(tinycudann=False)
    assert external.optional_import("tinycudann") is None
    assert not external.is_available("tinycudann")
    assert external.optional_import("surely_not_a_real_module_xyz") is None


def test_broken_package_counts_as_missing(monkeypatch):
    external._reset_for_tests()

    def broken(name):
        raise OSError("libcudart.so.12: cannot open shared object file")

    monkeypatch.setattr(external.importlib, "import_module", broken)
    assert external.optional_import("tinycudann") is None
    with pytest.raises(MissingDependencyError, match="libcudart"):
        external.require("tinycudann", "hash-grid encoding")
    external._reset_for_tests()


def test_require_says_how_to_install(packages):
    packages(tinycudann=False)
    with pytest.raises(MissingDependencyError, match="tiny-cuda-nn.*backend: torch"):
        external.require("tinycudann", "hash-grid encoding")


def test_torch_backend_never_warns(packages):
    packages(tinycudann=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_backend("torch") == "torch"


def test_auto_falls_back_with_a_single_warning(packages):
    packages(tinycudann=False)
    with pytest.warns(BackendFallbackWarning, match="tinycudann is not installed") as record:
        assert resolve_backend("auto") == "torch"
        assert resolve_backend("auto") == "torch"
    assert len(record) == 1


def test_auto_without_cuda_falls_back(packages):
    packages(tinycudann=True, cuda=False)
    with pytest.warns(BackendFallbackWarning, match="no CUDA device"):
        assert resolve_backend("auto") == "torch"


def test_auto_picks_tcnn_when_usable(packages):
    packages(tinycudann=True, cuda=True)
    assert resolve_backend("auto") == "tcnn"


def test_explicit_tcnn_errors_when_unusable(packages):
    packages(tinycudann=False)
    with pytest.raises(MissingDependencyError, match="backend=tcnn.*pip install"):
        resolve_backend("tcnn")
    packages(tinycudann=True, cuda=False)
    with pytest.raises(MissingDependencyError, match="cannot run: no CUDA device"):
        resolve_backend("tcnn")
    with pytest.raises(ValueError, match="not one of"):
        resolve_backend("cuda")


def test_encoding_selection(packages):
    packages(tinycudann=False)
    cfg = dict(type="hashgrid", num_levels=2, log2_hashmap_size=8, base_resolution=4, max_resolution=8)
    with pytest.raises(MissingDependencyError):
        HashGridEncoding(EncodingConfig(**cfg, backend="tcnn"))
    with pytest.warns(BackendFallbackWarning):
        enc = HashGridEncoding(EncodingConfig(**cfg, backend="auto"))
    assert enc.backend == "torch" and isinstance(enc.grid, TorchHashGrid)


def test_every_backend_switch_says_when_auto_falls_back(packages):
    """The SfM switch (hloc) no longer falls back silently: one warning naming the setting."""
    packages(hloc=False)
    kw = dict(feature="SfM features and matching", setting="sfm.backend", fallback="pycolmap")
    with pytest.warns(BackendFallbackWarning, match="sfm.backend=auto uses pycolmap because hloc") as record:
        assert resolve("auto", **kw, accelerated="hloc", package="hloc") == "pycolmap"
        assert resolve("auto", **kw, accelerated="hloc", package="hloc") == "pycolmap"
    assert len(record) == 1
    with pytest.raises(MissingDependencyError, match="sfm.backend=hloc"):
        resolve("hloc", **kw, accelerated="hloc", package="hloc")
    packages(hloc=True)
    assert resolve("auto", **kw, accelerated="hloc", package="hloc") == "hloc"
