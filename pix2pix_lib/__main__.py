"""`python -m pix2pix_lib <verb> ...`: the command line lives in `cli/`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
