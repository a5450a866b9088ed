"""``python -m socialsync.sandbox`` serves the sandbox."""

from socialsync.sandbox.server import main

main()
