import sys

from mlbalance.cli import main

sys.exit(main())
