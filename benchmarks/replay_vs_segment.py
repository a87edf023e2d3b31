"""cdpio replay (segment route) vs segment-analytics-python, side by side.

    python benchmarks/replay_vs_segment.py [--quick] [--pairs N] [--events N]

The same as `python -m benchmarks --only segment floor`: the same events and
count on both sides, a raw sink, interleaved pairs after a warm-up, every
messageId counted at the sink; the client in its defaults and tuned (100 per
batch, 4 upload threads, a queue that holds the file), and the floor script
(orjson + one keep-alive connection).  See benchmarks/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite import main  # noqa: E402

if __name__ == "__main__":
    sys.argv[1:1] = ["--only", "segment", "floor"] if "--only" not in sys.argv else []
    main()
