import sys

from agent.admin.cli import main

sys.exit(main())
