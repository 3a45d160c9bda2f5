//! berth-dockerfile: Dockerfile parser: text to typed instructions, ARG/ENV expansion, .dockerignore.
