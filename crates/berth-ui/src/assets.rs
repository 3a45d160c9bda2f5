//! The dashboard's files, embedded at compile time from `web/dist/` (see `build.rs`).

mod generated {
    include!(concat!(env!("OUT_DIR"), "/assets.rs"));
}

/// How to get a binary with the dashboard in it (said when `--ui` meets a binary without).
pub const BUILD_HINT: &str = "run scripts/ui-build.sh (npm + esbuild), then rebuild berth";

/// Were the assets built into this binary?
pub fn built() -> bool {
    generated::BUILT
}

/// The file at `path` (relative, `/`-separated) and its content type.
pub fn get(path: &str) -> Option<(&'static [u8], &'static str)> {
    generated::FILES
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(p, b)| (*b, content_type(p)))
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "json" => "application/json",
        "map" => "application/json",
        "png" => "image/png",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn content_types_by_extension() {
        assert_eq!(
            super::content_type("a/b.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            super::content_type("index.html"),
            "text/html; charset=utf-8"
        );
        assert_eq!(super::content_type("x"), "application/octet-stream");
    }

    #[test]
    fn built_assets_have_an_index() {
        // Either nothing was built, or the build has the page the router serves at `/`.
        assert_eq!(super::built(), super::get("index.html").is_some());
    }
}
