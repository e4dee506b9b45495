"""Takes a run folder's lock in its own process and holds it until killed.

Usage: python -m tests.recipes._lock_holder OUTPUT_DIR
Prints "held" once the lock is taken.
"""

import sys
import time

from kerasft import _io

if __name__ == "__main__":
    _io.lock_run_folder(sys.argv[1])
    print("held", flush=True)
    time.sleep(300)
