"""etprof: profile ExecuTorch programs and attribute run-model time to XNNPACK and portable kernels.

The notebook API lives in :mod:`etprof.api`; importing this package stays cheap (no torch).
"""

from __future__ import annotations

__version__ = "0.1.0"
