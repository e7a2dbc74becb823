"""Every term class is handled by every term walker: the walkers in nnsmt.terms, the SMT-LIB
printer, and the pySMT and dReal translations. A class added to nnsmt.terms without a sample
here, or without a case in a walker, fails these tests."""

import dataclasses
import types
import typing
from fractions import Fraction

import numpy as np
import pytest

from nnsmt import terms
from nnsmt.errors import InputError, InternalError, NnsmtError
from nnsmt.printer import Printer, fmt_fraction
from nnsmt.terms import (TERMS, Add, And, Bool, Cmp, Div, Dot, Exp, Floor, Ite, Mul, Not, Num, Or,
                         Script, ScriptBuilder, Var, atoms, children, linear_form, subterms,
                         term_features, variables)

NOT_TERMS = {terms.Objective, terms.Script}  # dataclasses of nnsmt.terms that are not terms

x, y = Var("x"), Var("y")
half = Num(Fraction(1, 2))
ge = Cmp(">=", x, half)
DOT = Dot(np.array([0.5, -1.0, 0.0]), np.array(["x", "y", "z"], dtype=object), Num(1))
SAMPLES = {  # class -> (an instance, "real" or "bool")
    Var: (x, "real"),
    Num: (half, "real"),
    Add: (Add((x, half)), "real"),
    Mul: (Mul((x, y)), "real"),
    Div: (Div(x, Add((y, Num(2)))), "real"),
    Dot: (DOT, "real"),
    Ite: (Ite(ge, x, half), "real"),
    Exp: (Exp(Mul((Num(-1), x))), "real"),
    Floor: (Floor(Add((x, half))), "real"),
    Cmp: (ge, "bool"),
    And: (And((ge, Cmp("<", y, x))), "bool"),
    Or: (Or((ge, Bool(False))), "bool"),
    Not: (Not(ge), "bool"),
    Bool: (Bool(True), "bool"),
}


def term_classes():
    """Every dataclass defined in nnsmt.terms but the script containers."""
    return {c for c in vars(terms).values() if isinstance(c, type) and c.__module__ == terms.__name__
            and dataclasses.is_dataclass(c) and c not in NOT_TERMS}


def test_terms_registry_is_complete():
    classes = term_classes()
    assert classes == set(TERMS), "nnsmt.terms.TERMS must list every term class"
    assert set(typing.get_args(terms.Term)) == set(TERMS), "nnsmt.terms.Term must name every term class"
    missing = classes - set(SAMPLES)
    assert not missing, f"no sample for {sorted(c.__name__ for c in missing)}: add one to SAMPLES " \
                        "and a case to every walker"


@pytest.mark.parametrize("cls", TERMS, ids=lambda c: c.__name__)
def test_core_walkers_handle(cls):
    t, sort = SAMPLES[cls]
    kids = children(t)
    assert all(isinstance(k, TERMS) for k in kids)
    walked = list(subterms(t))
    assert walked[0] is t and len(walked) == 1 + sum(len(list(subterms(k))) for k in kids)
    assert variables(t) <= {"x", "y", "z"}
    assert term_features(t) <= {"nonlinear", "exp", "int"}
    linear_form(t)  # a form or None, never an error
    assert all(isinstance(a, Cmp) for a in atoms(t))


@pytest.mark.parametrize("cls", TERMS, ids=lambda c: c.__name__)
def test_smtlib_printer_handles(cls):
    from nnsmt.backends.smtlib import to_smtlib
    t, sort = SAMPLES[cls]
    text = Printer().term(t)
    assert text.count("(") == text.count(")") and text
    b = ScriptBuilder()
    for n in ("x", "y", "z"):
        b.declare(n)
    if sort == "real":
        b.define("v", t)
    else:
        b.assert_("a", t)
    assert text in to_smtlib(b.build())


@pytest.mark.parametrize("cls", TERMS, ids=lambda c: c.__name__)
def test_pysmt_translation_handles(cls):
    pytest.importorskip("pysmt")
    from pysmt.environment import Environment
    from pysmt.typing import REAL

    from nnsmt.backends.pysmt_backend import ToPysmt
    from nnsmt.errors import BackendUnavailable
    env = Environment()
    conv = ToPysmt(env)
    conv.env.update({n: env.formula_manager.Symbol(n, REAL) for n in ("x", "y", "z")})
    t, _ = SAMPLES[cls]
    try:
        f = conv.term(t)
    except BackendUnavailable as e:  # said, not a crash: pySMT has no exp, no to_int
        assert cls is Exp and "exp" in str(e) or cls is Floor and "to_int" in str(e)
        return
    assert f is not None


class _E:
    """A stand-in for dReal's Expression, Variable and Formula: records how it was built."""

    def __init__(self, *a):
        self.a = a

    def _op(self, *o):
        return _E(self, *o)

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = _op
    __lt__ = __le__ = __gt__ = __ge__ = __eq__ = __neg__ = _op
    __hash__ = object.__hash__


FAKE_DREAL = types.SimpleNamespace(Variable=_E, Expression=_E, exp=_E, if_then_else=_E, And=_E,
                                   Or=_E, Not=_E, Formula=types.SimpleNamespace(TRUE=_E, FALSE=_E))


@pytest.mark.parametrize("cls", TERMS, ids=lambda c: c.__name__)
def test_dreal_translation_handles(cls, monkeypatch):
    from nnsmt.backends import dreal_backend
    monkeypatch.setattr(dreal_backend, "dreal", FAKE_DREAL)
    b = dreal_backend._Builder(Script(("x", "y", "z"), (), ()))
    t, sort = SAMPLES[cls]
    if cls is Floor:  # dReal has no to_int: said (its capabilities refuse "int" before this)
        with pytest.raises(TypeError, match="no to_int"):
            b.expr(t)
        return
    assert isinstance(b.expr(t) if sort == "real" else b.formula(t), _E)
    with pytest.raises(TypeError, match="expected"):  # the other sort is a translation error
        b.formula(t) if sort == "real" else b.expr(t)


class Stranger:
    """Not a term."""


@pytest.mark.parametrize("walk", [children, lambda t: list(subterms(t)), variables, term_features,
                                  linear_form, lambda t: list(atoms(t)), Printer().term])
def test_unknown_term_is_an_internal_error(walk):
    with pytest.raises(InternalError, match="unknown term type Stranger"):
        walk(Stranger())
    assert issubclass(InternalError, NnsmtError) and InternalError.exit_code == 1


def test_translations_refuse_unknown_terms(monkeypatch):
    from nnsmt.backends import dreal_backend
    from nnsmt.backends.pysmt_backend import ToPysmt
    monkeypatch.setattr(dreal_backend, "dreal", FAKE_DREAL)
    b = dreal_backend._Builder(Script((), (), ()))
    for walk in (b.expr, b.formula):
        with pytest.raises(InternalError, match="dReal translation: unknown term type Stranger"):
            walk(Stranger())
    pytest.importorskip("pysmt")
    from pysmt.environment import Environment
    with pytest.raises(InternalError, match="pySMT translation: unknown term type Stranger"):
        ToPysmt(Environment()).term(Stranger())


def test_variables_include_the_names_of_dot_products():
    t = And((Cmp("<=", DOT, y), Not(Cmp("=", Dot(np.array(["w0"], dtype=object),
                                                     np.array(["x"], dtype=object)), Num(0)))))
    assert variables(t) == {"x", "y", "z", "w0"}
    assert term_features(t) == {"nonlinear"}  # names times names
    assert term_features(Div(x, half)) == set() and term_features(Div(half, x)) == {"nonlinear"}
    assert term_features(Ite(ge, Exp(x), x)) == {"exp"}
    assert term_features(Floor(x)) == {"int"}
    assert Printer().term(Floor(x)) == "(to_real (to_int x))"


def test_printer_number_format_is_pluggable():
    """The one printer writes VNN-LIB style decimals when given another constant format."""
    dec = Printer(lambda q: str(float(q)))
    assert dec.term(Cmp(">=", Add((x, Num(Fraction(-1, 4)))), half)) == "(>= (+ x -0.25) 0.5)"
    assert Printer().term(DOT) == "(+ (* (/ 1 2) x) (- y) 1.0)"
    assert dec.term(DOT) == "(+ (* 0.5 x) (- y) 1.0)"
    assert Printer().term(Num(Fraction(-3, 4))) == fmt_fraction(Fraction(-3, 4)) == "(- (/ 3 4))"


def test_bad_comparison_and_duplicate_names_are_nnsmt_errors():
    with pytest.raises(InternalError, match="'=<' is not one of"):
        Cmp("=<", x, y)
    b = ScriptBuilder()
    b.declare("v_0")
    with pytest.raises(InputError, match="'v_0' is defined twice"):
        b.define("v_0", half)
