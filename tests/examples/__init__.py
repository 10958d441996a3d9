"""Tests of ``examples/cog-diffusers``, the diffusers predictor for a cog backend.

cog imports the example's modules by their plain names (``predict``, ``txt2img``,
``pipelines``) from the predictor's directory; the tests do the same, with that directory
appended to ``sys.path`` here (appended: it shadows nothing installed).
"""

import sys
from pathlib import Path

EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "examples" / "cog-diffusers"

if str(EXAMPLE_DIR) not in sys.path:
    sys.path.append(str(EXAMPLE_DIR))
