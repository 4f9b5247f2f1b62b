"""``kerasinit.mup`` is :mod:`kerasinit.policies.mup` (its home since the policies package); this path stays public."""

import sys

from kerasinit.policies import mup

sys.modules[__name__] = mup
