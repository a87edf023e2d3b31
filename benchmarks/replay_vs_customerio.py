"""cdpio replay --route customerio vs the `customerio` client, side by side.

    python benchmarks/replay_vs_customerio.py [--quick] [--pairs N] [--events N]

The same as `python -m benchmarks --only customerio customerio-calls`: the
same events and the same count on both sides, a raw sink (not the sandbox,
whose per-request CPU capped a one-call-per-event client), interleaved pairs
after a warm-up, every operation counted at the sink, and the client in its
best mode (its own `batch()`, Track v2, 100 operations per request, from one
and from four threads) as well as one call per event.  See benchmarks/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite import main  # noqa: E402

if __name__ == "__main__":
    sys.argv[1:1] = ["--only", "customerio", "customerio-calls"] if "--only" not in sys.argv else []
    main()
