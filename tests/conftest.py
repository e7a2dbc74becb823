import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
BENCH = SHARED / "benchmarks"
EXAMPLES = ROOT / "examples"
GOLDEN = Path(__file__).resolve().parent / "golden"


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", help="rewrite tests/golden/* files")


@pytest.fixture
def update_golden(request):
    return request.config.getoption("--update-golden")


def need_shared(*parts) -> Path:
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} is missing (shared/ must sit beside the repository)")
    return p


def solver_backend(name):
    """The named backend, or a skip that says what is missing."""
    from nnsmt.backends import available, get_backend
    why = available().get(name)
    if why:
        pytest.skip(why)
    return get_backend(name)


@pytest.fixture(params=["z3", "cvc5"])
def backend(request):
    return solver_backend(request.param)


def have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None
