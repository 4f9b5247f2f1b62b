"""The classic tutorial experiment: draw 1,000 weights per scheme and compare with the formulas.

    python examples/weight_statistics.py [--fan-in 10] [--fan-out 20] [--out bounds.png]
"""

from __future__ import annotations

import argparse

import kerasinit

SCHEMES = ["xavier_uniform", "normalized_xavier_uniform", "xavier_normal", "plain_he_normal", "he_uniform",
           "kwon_logistic_uniform", "kwon_tanh_uniform", "kwon_relu_uniform"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fan-in", type=int, default=10)
    parser.add_argument("--fan-out", type=int, default=20)
    parser.add_argument("--out", default=None, help="also plot the ranges against fan-in to this file")
    args = parser.parse_args()
    print(f"{'scheme':28s} {'bound':>9s} {'exp std':>9s} | {'min':>9s} {'max':>9s} {'mean':>9s} {'std':>9s}")
    for name in SCHEMES:
        s = kerasinit.summarize(name, shape=(args.fan_in, args.fan_out), n=1000, seed=0)
        bound = f"±{s.expected.bounds[1]:.6f}" if s.expected.bounds else "   (none)"
        print(f"{name:28s} {bound:>9s} {s.expected.std:9.6f} | {s.min:9.6f} {s.max:9.6f} {s.mean:9.6f} {s.std:9.6f}")
    if args.out:
        kerasinit.plot_bounds(SCHEMES[:4], fan_in=range(1, 101), fan_out=args.fan_out, out=args.out)
        print("wrote", args.out)


if __name__ == "__main__":
    main()
