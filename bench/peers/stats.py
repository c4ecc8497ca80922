"""min / median / max of a list of numbers: `python stats.py 1.0 2.0 3.0` -> "2.00 (min 1.00, max 3.00)".
Used by bench/peers/*.sh to print the median of three runs with its spread."""
import statistics
import sys


def summary(values, fmt="%.2f"):
    v = sorted(values)
    return (fmt + " (min " + fmt + ", max " + fmt + ")") % (statistics.median(v), v[0], v[-1])


if __name__ == "__main__":
    print(summary([float(x) for x in sys.argv[1:]]))
