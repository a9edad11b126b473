"""torch/torchvision: model factory, torch datasets over rows, training and inference loops."""
