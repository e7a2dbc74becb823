"""Embedding nnsmt in another verifier: its Python API end to end.

    .venv/bin/python examples/embed.py [--smt2 FILE]

1. load the example network (examples/classifier.onnx, 2 inputs, 3 outputs);
2. verify two VNN-LIB properties: class1_margin.vnnlib is violated (sat: a counterexample,
   replayed exactly and in onnxruntime) and corner_robust.vnnlib holds (unsat);
3. build the query of corner_robust.vnnlib as a VerifyQuery and emit its SMT-LIB2 (any
   SMT-LIB solver can take it from here);
4. classify the ReLUs of the digits network digits_l1 over [0, 16]^64 (which never switch)
   and remove the stable ones exactly, the equivalence proved;
5. solve the query of step 3 on two backends and compare their answers (unsat on both: a sat
   would be reported only with a model the query certified by replaying it through the network).

Exit code 0 when every verdict is the expected one and the backends agree, else 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nnsmt

HERE = Path(__file__).resolve().parent


def check(what: str, got: str, expected: str) -> bool:
    ok = got == expected
    print(f"{what}: {got}" + ("" if ok else f"   <-- expected {expected}"))
    return ok


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smt2", type=Path, help="also write the SMT-LIB2 of step 3 to this file")
    args = ap.parse_args(argv)
    ok = True

    # 1. a network from any supported file (.onnx, .pt, .safetensors, .keras, .json)
    net = nnsmt.load_network(HERE / "classifier.onnx")
    print(f"== network: {net.source}: {net.inputs[0].dim} inputs, outputs {net.outputs}")

    # 2. verify: a path, VNN-LIB text or a loaded Property; the engine is chosen per network
    print("\n== verify")
    for name, expected in (("class1_margin.vnnlib", "sat"), ("corner_robust.vnnlib", "unsat")):
        outcome = nnsmt.verify(net, HERE / name, timeout=60)
        ok &= check(name, outcome.status, expected)
        print(f"  engine: {outcome.engine}; " + "; ".join(outcome.notes))
        if outcome.status == "sat":
            cex = outcome.witness  # an nnsmt.Counterexample: exact x and y
            print("  counterexample (VNN-COMP format):")
            print("  " + cex.vnncomp().replace("\n", "\n  "))
            print("  replayed: exact" + (f" and {cex.float_replay}" if cex.float_replay else "")
                  + (f" ({cex.float_check})" if cex.float_check else ""))

    # 3. the query itself, and its SMT-LIB2 text
    print("\n== SMT-LIB2 of VerifyQuery(classifier.onnx, corner_robust.vnnlib)")
    query = nnsmt.VerifyQuery(net, nnsmt.load_property(HERE / "corner_robust.vnnlib"))
    text = nnsmt.to_smtlib(query)
    lines = text.splitlines()
    print("\n".join(lines[:12]) + f"\n... ({len(lines)} lines in all)\n" + "\n".join(lines[-3:]))
    if args.smt2:
        args.smt2.write_text(text)
        print(f"written to {args.smt2}")

    # 4. which ReLUs never switch over a domain, and the network without them, proved equal
    print("\n== stability and exact compression: digits_l1 over [0, 16]^64")
    digits, box = HERE / "digits" / "digits_l1.onnx", HERE / "digits" / "box.json"
    st = nnsmt.stable(digits, box, timeout=60)  # each stable verdict proved, each unstable witnessed
    print("  " + ", ".join(f"{k} {v}" for k, v in st.counts().items()))
    ok &= check("neurons left unknown", str(st.counts()["unknown"]), "0")
    small = nnsmt.compress(digits, box, timeout=60)
    ok &= check("equivalence of the compressed network", small.equivalence, "unsat")
    print(f"  ReLUs {small.before['relus']} -> {small.after['relus']}, "
          f"connections {small.before['connections']} -> {small.after['connections']}")

    # 5. the query of step 3 on two backends (each in a child process, killed at the timeout)
    print("\n== the same query on two backends")
    installed = [b for b, why in nnsmt.available_backends().items() if why is None]
    if len(installed) < 2:
        print(f"only {installed} installed: nothing to compare")
        return 0 if ok else 1
    outcomes = {b: nnsmt.solve(query, b, timeout=60) for b in installed[:2]}
    for b, o in outcomes.items():
        ok &= check(b, o.status, "unsat")
        if o.witness is not None:
            print(f"  x = {[float(v) for v in o.witness.x]}, y = {[round(float(v), 6) for v in o.witness.y]}")
    statuses = {o.status for o in outcomes.values()}
    if len(statuses) == 1:
        print(f"backends agree: {statuses.pop()}")
    else:
        print(f"backends disagree: {', '.join(f'{b} {o.status}' for b, o in outcomes.items())}")
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
