"""Plain helpers the example's stages use (imported from pipeline.py's directory)."""
import statistics


def parse_numbers(text):
    return [float(tok) for tok in text.replace(",", " ").split()]


def describe(values, precision):
    r = lambda x: round(x, precision)  # noqa: E731
    return {"min": r(min(values)), "max": r(max(values)), "mean": r(statistics.fmean(values)),
            "stdev": r(statistics.pstdev(values))}


def histogram(values, bins):
    lo, hi = min(values), max(values)
    width = (hi - lo) / bins or 1.0
    counts = [0] * bins
    for v in values:
        counts[min(int((v - lo) / width), bins - 1)] += 1
    return "".join(f"{lo + k * width:8.2f} | {'#' * c}\n" for k, c in enumerate(counts))
