"""What bench/*.sh reports are made of (imported with PYTHONPATH=$BENCH_DIR):
nearest-rank percentiles, and figure files of `KIND VALUE` lines."""


def pct(values, q):
    """The q-quantile (0.5: the median, 0.9: p90) by nearest rank."""
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def by_kind(path):
    """`KIND VALUE` lines → {kind: [values]}, in file order."""
    values = {}
    for line in open(path):
        kind, value = line.split()
        values.setdefault(kind, []).append(float(value))
    return values
