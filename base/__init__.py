"""The leaf every other package may import: it imports nothing of the project."""
