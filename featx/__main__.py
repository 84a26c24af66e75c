"""`python -m featx ...` and `torchrun -m featx ...`."""

from featx.cli import main

if __name__ == "__main__":
    main(prog_name="featx")
