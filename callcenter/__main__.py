"""``python -m callcenter`` is the ``callcenter`` command."""

from callcenter.cli import main

main(prog_name="callcenter")
