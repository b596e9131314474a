"""``python -m tinygpt`` runs the CLI."""

from tinygpt.cli import main

if __name__ == "__main__":
    main()
