"""nnsmt supports --CAPABILITY: what nnsmt verifies, as VNN-LIB 2's chapter 5 asks (one answer
per line on stdout), derived from the code that does it: the operators from the ONNX frontend's
op table, the element types from the float semantics (`nnsmt.vnnlib2.SOUND_TYPES`)."""

from __future__ import annotations

from .common import add_command

# capability -> (help, answer function); the answers are computed, not written down
CAPABILITIES = {
    "onnx-opset-versions": "the lowest and highest ONNX opset the frontend lowers",
    "onnx-element-types": "the element types nnsmt answers soundly (IEEE execution in that type, or real)",
    "onnx-operators": "the ONNX operators the frontend lowers",
    "vnnlib-versions": "the lowest and highest VNN-LIB version nnsmt reads",
    "hidden-node-theories": "hidden-node theories (NH, H)",
    "multiple-input-output-theories": "multiple input/output theories (SIO, MIO)",
    "multiple-network-theories": "multiple-network theories (SNET, MENET, MINET, MNET)",
    "multiple-node-comparison-theories": "multi-node comparison theories (SNC, MNC)",
    "arithmetic-complexity-theories": "arithmetic complexity theories (BND, OUTC, LIN, POLY)",
    "optimised-disjunctive-reasoning": "whether disjunctions are handled without expanding to DNF",
    "serialise-assignments": "whether verify --serialise-assignments DIR is supported",
}


def answer(cap: str) -> list[str]:
    """The lines nnsmt prints for capability `cap` (without the leading dashes)."""
    from nnsmt.frontends.onnx_frontend import OPSETS, SUPPORTED_OPS
    from nnsmt.vnnlib2 import SOUND_TYPES, VERSIONS
    if cap == "onnx-opset-versions":
        return [str(OPSETS[0]), str(OPSETS[1])]
    if cap == "onnx-element-types":
        return list(SOUND_TYPES)
    if cap == "onnx-operators":
        return list(SUPPORTED_OPS)
    if cap == "vnnlib-versions":
        return list(VERSIONS)
    if cap == "hidden-node-theories":
        return ["NH", "H"]
    if cap == "multiple-input-output-theories":
        return ["SIO", "MIO"]
    if cap == "multiple-network-theories":
        return ["SNET", "MENET", "MINET", "MNET"]
    if cap == "multiple-node-comparison-theories":
        return ["SNC", "MNC"]
    if cap == "arithmetic-complexity-theories":
        return ["BND", "OUTC", "LIN", "POLY"]
    if cap == "optimised-disjunctive-reasoning":
        # disjunctions go to the solver as they are (no DNF expansion); input disjunctions
        # of boxes are split into their boxes by the split engine
        return ["true"]
    if cap == "serialise-assignments":
        return ["true"]
    raise KeyError(cap)


def run(args) -> int:
    from nnsmt.errors import InputError
    chosen = [c for c in CAPABILITIES if getattr(args, c.replace("-", "_"))]
    if len(chosen) != 1:
        raise InputError("give exactly one capability, e.g. nnsmt supports --onnx-operators "
                         f"(one of: {', '.join('--' + c for c in CAPABILITIES)})")
    print("\n".join(answer(chosen[0])))
    return 0


def register(sub):
    sp = add_command(sub, "supports", "report one capability, as the VNN-LIB 2 verifier interface asks "
                     "(one answer a line)", run)
    g = sp.add_mutually_exclusive_group()
    for cap, help in CAPABILITIES.items():
        g.add_argument(f"--{cap}", action="store_true", help=help)
