//! The daemon's crash-safe file replacement is berth-rootfs's one helper (unique temp, fsync,
//! rename, fsync dir); this module keeps the daemon's path to it and the test of the record
//! save path that uses it.

pub use berth_rootfs::atomic::write_atomic;

#[cfg(test)]
mod tests {
    use std::fs;

    /// The container record's save path (`config.v2.json`): many saves of one record at once.
    #[test]
    fn concurrent_container_saves_keep_a_whole_record() {
        let d = tempfile::tempdir().unwrap();
        let ctrs = crate::containers::Containers::open(d.path());
        let id = "c0ffee".repeat(4);
        std::thread::scope(|s| {
            for t in 0..8 {
                let (ctrs, id) = (&ctrs, &id);
                s.spawn(move || {
                    for i in 0..40 {
                        let rec = crate::containers::Record {
                            id: id.clone(),
                            name: format!("n{t}-{i}-{}", "x".repeat(4096)),
                            ..Default::default()
                        };
                        ctrs.persist(&rec).expect("concurrent save failed");
                    }
                });
            }
        });
        let dir = ctrs.ctr_dir(&id);
        let rec: crate::containers::Record =
            serde_json::from_slice(&fs::read(dir.join("config.v2.json")).unwrap()).unwrap();
        assert_eq!(rec.id, id);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "temp files left");
    }
}
