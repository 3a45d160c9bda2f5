//! Mount planning.
