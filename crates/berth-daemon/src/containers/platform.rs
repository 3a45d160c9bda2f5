//! `POST /containers/create?platform=`: the image must be for the platform asked, as dockerd
//! checks (a 404 naming both platforms), instead of the parameter being ignored.

use crate::error::DaemonError;
use berth_oci::Platform;

use super::create::with_latest;
use crate::engine::Engine;

/// The refusal for an image whose platform is `actual` when `wanted` was asked; None when the
/// image is for that platform (a variant only counts when both name one).
pub(crate) fn mismatch(image: &str, wanted: &Platform, actual: &Platform) -> Option<String> {
    (!actual.matches(wanted)).then(|| {
        format!(
            "image with reference {} was found but does not match the specified platform: \
             wanted {wanted}, actual: {actual}",
            with_latest(image)
        )
    })
}

impl Engine {
    /// Check `image` against the `platform` a create asked for (nothing to do without one).
    pub(crate) async fn check_create_platform(
        &self,
        image: Option<&str>,
        platform: Option<&str>,
    ) -> crate::error::Result<()> {
        let (Some(image), Some(platform)) = (image, platform.filter(|p| !p.is_empty())) else {
            return Ok(());
        };
        let wanted = Platform::parse(platform).map_err(DaemonError::invalid)?;
        let name = image.to_string();
        // A missing image is create's own 404, with its own words.
        let Ok(stored) = self.blocking(move |s| s.image(&name)).await else {
            return Ok(());
        };
        let c = &stored.config;
        let actual = Platform {
            os: c.os.clone(),
            architecture: c.architecture.clone(),
            variant: c.variant.clone(),
            os_version: None,
        };
        match mismatch(image, &wanted, &actual) {
            Some(m) => Err(DaemonError::NotFound(m)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_os_or_arch_is_refused_naming_both() {
        let amd = Platform::parse("linux/amd64").unwrap();
        assert_eq!(mismatch("busybox", &amd, &amd), None);
        let m = mismatch("busybox", &Platform::parse("linux/arm64").unwrap(), &amd).unwrap();
        assert_eq!(
            m,
            "image with reference busybox:latest was found but does not match the specified \
             platform: wanted linux/arm64, actual: linux/amd64"
        );
        assert!(mismatch("b", &Platform::parse("windows/amd64").unwrap(), &amd).is_some());
    }
}
