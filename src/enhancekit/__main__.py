"""``python -m enhancekit`` runs the command line (also how DDP relaunches training processes)."""

from enhancekit.cli.app import run

if __name__ == "__main__":
    run()
