"""What the model sees: `featx preview` (the exact input tensors) and the preprocessing
conformance checks against timm's, open_clip's and torchvision's own transforms."""
