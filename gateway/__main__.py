"""``python -m gateway`` runs the ``bridgehead`` command."""

from gateway.cli import main

main()
