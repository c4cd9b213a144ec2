"""``python -m flowengine.media --host 127.0.0.1 --port 8888 --media-dir DIR``."""

import sys

from flowengine.media.cli import main

sys.exit(main())
