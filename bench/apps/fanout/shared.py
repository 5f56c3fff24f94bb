def work(i: int) -> int:
    """The per-step work, shared with the raw-Ray baseline in bench/fanout.py."""
    return i * i
