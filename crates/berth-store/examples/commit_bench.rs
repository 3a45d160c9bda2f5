//! Time `Store::commit_layer` (unpack + gzip + hashes, what every build step and `commit` pay)
//! on a tar of a host directory: `cargo run --release -p berth-store --example commit_bench --
//! /usr/share/locale`. Stores go under /var/tmp and are removed.
fn main() {
    let src = std::env::args().nth(1).unwrap();
    let mut tarbuf = Vec::new();
    {
        let mut b = tar::Builder::new(&mut tarbuf);
        b.follow_symlinks(false);
        b.append_dir_all("x", &src).unwrap();
        b.finish().unwrap();
    }
    println!("tar {} MB", tarbuf.len() >> 20);
    for _ in 0..3 {
        let d = tempfile::tempdir_in("/var/tmp").unwrap();
        let s = berth_store::Store::open(d.path()).unwrap();
        let t = std::time::Instant::now();
        let l = s.commit_layer(None, &tarbuf[..]).unwrap();
        println!(
            "commit {:?} blob {} MB",
            t.elapsed(),
            l.descriptor.size >> 20
        );
    }
}
