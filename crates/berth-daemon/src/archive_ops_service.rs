//! berth-api's `ContainerFsService` over [`crate::archive_ops`].
