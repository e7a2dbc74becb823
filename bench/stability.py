"""Stability classification: single-query harvesting vs per-neuron queries, same networks.

    python bench/stability.py [--nets digits_l1,digits_plain] [--backend cvc5] [--timeout 20]
                              [--samples 0]

On the digits MLPs (examples/digits, domain [0, 16]^64) both methods classify every ReLU; the
classifications must be identical (a difference is flagged, and the exit code is 1). Prints
counts, queries and time per method, and the speed ratio per-neuron / single measured in
this run. Neurons whose query timed out are "unknown" in both methods' counts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nnsmt.backends import get_backend  # noqa: E402
from nnsmt.commands.stable import summary_line  # noqa: E402
from nnsmt.domain import parse_box_json  # noqa: E402
from nnsmt.frontends import load_onnx  # noqa: E402
from nnsmt.queries.stability import check_witnesses, classify  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nets", default="digits_l1,digits_plain")
    ap.add_argument("--backend", default="cvc5")
    ap.add_argument("--timeout", type=float, default=20, help="seconds per query")
    ap.add_argument("--samples", type=int, default=0)
    a = ap.parse_args()
    be = get_backend(a.backend)
    dom = parse_box_json('{"lo": 0, "hi": 16, "dim": 64}', "[0, 16]^64")
    bad = False
    for name in a.nets.split(","):
        g = load_onnx(ROOT / "examples" / "digits" / f"{name}.onnx")
        print(f"{name} over [0, 16]^64, backend {a.backend}, {a.timeout:.0f} s per query, samples {a.samples}")
        res = []
        for m in ("single", "per-neuron"):
            st = classify(g, dom, lambda s, t: be.solve(s, timeout=t), method=m, timeout=a.timeout,
                          samples=a.samples)
            check_witnesses(g, st)
            res.append(st)
            print("  " + summary_line(st), flush=True)
        same = res[0].same_as(res[1])
        bad |= not same
        print(f"  identical classifications: {'yes' if same else 'NO (flagged)'}; "
              f"speed ratio per-neuron / single: {res[1].time_s / max(res[0].time_s, 1e-9):.1f}x; "
              f"queries {res[1].queries} vs {res[0].queries}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
