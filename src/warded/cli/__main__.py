"""`python -m warded.cli`: the same as the `warded` command."""

from warded.cli import main

main()
