#!/usr/bin/env python3
"""scipy.optimize.linear_sum_assignment as the oracle for test_hungarian.

    python3 scipy_lsap_oracle.py CASES.json  ->  prints [[[row, col], ...], ...]

CASES.json: [{"rows": R, "cols": C, "cost": [R*C numbers, row-major]}, ...]
"""
import json
import sys

import numpy as np
from scipy.optimize import linear_sum_assignment


def main():
    out = []
    for case in json.load(open(sys.argv[1])):
        cost = np.array(case["cost"], dtype=np.float64).reshape(case["rows"], case["cols"])
        rows, cols = linear_sum_assignment(cost)
        out.append([[int(r), int(c)] for r, c in zip(rows, cols)])
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
