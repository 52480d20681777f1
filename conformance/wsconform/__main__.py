"""``python -m wsconform``: the same command as the ``wsconform`` console script."""

from wsconform.cli import main

if __name__ == "__main__":
    main(prog_name="wsconform")
