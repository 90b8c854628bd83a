"""``python -m agentgym.cli`` (as ``torchrun -m agentgym.cli`` starts it)."""

import sys

from agentgym.cli import main

sys.exit(main())
