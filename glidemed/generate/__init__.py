"""Image generation: the runner and the generators that plug into it."""
