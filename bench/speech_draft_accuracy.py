"""Accuracy of draft extraction on real Vosk transcripts of the shared speech samples, decoded
by the pipeline's ``transcribe_file``: type, topic, phone number (exact) and address words
over every citizen sample, with and without the digit pass, and without the place pass.

    python3 bench/speech_draft_accuracy.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.speech.conftest import (  # noqa: E402
    load_extractor,
    measure,
    transcribe_samples,
    truth,
)

TARGETS = {"type": 0.90, "topic": 0.85, "phone_exact": 0.95, "address_words": 0.90}


def report(title: str, transcripts: dict, seconds: float) -> None:  # type: ignore[type-arg]
    extractor = load_extractor()
    started = time.perf_counter()
    accuracy = measure(extractor, transcripts, truth())
    took = time.perf_counter() - started
    print(f"{title}: {accuracy.samples} citizen samples (decoding {seconds:.1f} s, "
          f"extraction {1000 * took:.0f} ms)")
    for name, rate in accuracy.rates().items():
        mark = "ok" if rate >= TARGETS[name] else "BELOW TARGET"
        print(f"  {name:14s} {rate:6.1%}  target {TARGETS[name]:.0%}  {mark}")
    for miss in accuracy.misses or ():
        print("  miss:", miss)


def main() -> None:
    transcribe_samples()  # the model loads once, outside the timings
    started = time.perf_counter()
    plain = transcribe_samples()
    decoded = time.perf_counter()
    report("without the digit pass", plain, decoded - started)
    with_digits = transcribe_samples(digit_pass=True)
    both = time.perf_counter()
    report("with the digit pass over numbers (the pipeline's default)", with_digits,
           both - decoded)
    without_places = transcribe_samples(digit_pass=True, place_pass=False)
    report("with the digit pass, without the place pass", without_places,
           time.perf_counter() - both)


if __name__ == "__main__":
    main()
