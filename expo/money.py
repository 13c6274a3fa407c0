"""Money is integer fen (1 yuan = 100 fen) everywhere; splits always sum exactly to their whole."""

from collections.abc import Sequence

FEN_PER_YUAN = 100


def yuan(amount: int) -> int:
    """Whole yuan to fen."""
    return amount * FEN_PER_YUAN


def format_fen(amount: int) -> str:
    """Render fen as yuan with two decimals, e.g. 16000 -> '160.00'."""
    sign = "-" if amount < 0 else ""
    whole, fen = divmod(abs(amount), FEN_PER_YUAN)
    return f"{sign}{whole}.{fen:02d}"


def split_by_weights(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` fen in proportion to `weights` by largest remainder; the parts sum to `total`.

    Ties in the remainder go to the earlier weight, so the split is deterministic.
    """
    if not weights or any(w < 0 for w in weights) or sum(weights) == 0:
        raise ValueError("weights must be non-negative with a positive sum")
    weight_sum = sum(weights)
    sign = -1 if total < 0 else 1
    magnitude = abs(total)
    floors = [magnitude * w // weight_sum for w in weights]
    remainders = [magnitude * w % weight_sum for w in weights]
    short = magnitude - sum(floors)
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[:short]:
        floors[i] += 1
    return [sign * part for part in floors]
