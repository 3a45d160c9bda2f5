//! `.dockerignore`: reading pattern files and Docker's patternmatcher semantics.
