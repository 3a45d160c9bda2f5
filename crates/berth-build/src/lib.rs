//! berth-build: Dockerfile instructions to image: build graph, steps, cache.
