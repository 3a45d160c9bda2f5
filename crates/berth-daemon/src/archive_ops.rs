//! docker cp / diff / export over a container's root filesystem.
