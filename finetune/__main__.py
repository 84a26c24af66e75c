"""`python -m finetune ...` (and `torchrun -m finetune run ...`)."""

from finetune.cli import main

if __name__ == "__main__":
    main()
