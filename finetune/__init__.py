"""Images -> end-to-end fine-tuned models: the papers' recipes, the training loop, evaluation."""
