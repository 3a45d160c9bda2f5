//! berth-daemon: The engine: containers, images, networks, volumes, events.
