import sys

from shoprank.cli.main import main

sys.exit(main())
