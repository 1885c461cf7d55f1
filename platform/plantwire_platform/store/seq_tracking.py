"""How a data message's `seq` moves a device's last committed sequence number: the one rule every
backend applies, so gap counting stays finite whatever a gateway (or a forger) sends.

- `seq` at or below the last committed one: a redelivery (or a late message); no gap, `last` stays.
- The device's first message (`last` 0): the numbers before it count as gaps, unless it is beyond
  `max_jump` (a fresh store meeting a long-running gateway): then it is the baseline, no gaps, and
  it is counted as a jump.
- A step of more than `max_jump`: counted as a jump, no gaps, and `last` does NOT move, so one forged
  `seq` of 2^63-1 can neither add 2^63 gaps nor make every later message look like a redelivery.
- Otherwise `last` moves to `seq` and the numbers skipped are gaps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

DEFAULT_MAX_SEQ_JUMP: Final = 1_000_000
"""A gateway numbers each device's messages one by one from its outbox, so real steps are 1 (gaps
only where messages were lost); a million is days of messages at the fastest publishing rate."""


@dataclass(frozen=True, slots=True)
class SeqStep:
    last: int
    """The device's last committed sequence number after this message."""
    gaps: int
    jumped: bool


def advance(last: int, seq: int, max_jump: int) -> SeqStep:
    if seq <= last:
        return SeqStep(last, 0, False)
    if seq - last > max_jump:
        return SeqStep(seq if last == 0 else last, 0, True)
    return SeqStep(seq, seq - last - 1, False)
