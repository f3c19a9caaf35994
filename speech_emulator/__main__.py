"""``python -m speech_emulator``: see `speech_emulator.cli`."""

import sys

from speech_emulator.cli import main

sys.exit(main())
