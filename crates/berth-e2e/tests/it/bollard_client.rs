//! bollard 0.21 as a typed Engine API client against an in-process berth daemon.

use crate::common;

use std::collections::HashMap;

use bollard::query_parameters::{
    EventsOptions, ListImagesOptions, RemoveImageOptions, TagImageOptions,
};
use bollard::Docker;
use common::{busybox, TestDaemon};
use futures::StreamExt;

const BUSYBOX_ID: &str = "sha256:c50ff9579a6201a92c094cbcb771a8a33f805bfe4f407e782060abaa04a4c240";

async fn next_action<S>(events: &mut S) -> String
where
    S: futures::Stream<Item = Result<bollard::models::EventMessage, bollard::errors::Error>>
        + Unpin,
{
    events.next().await.unwrap().unwrap().action.unwrap()
}

fn client(d: &TestDaemon) -> Docker {
    Docker::connect_with_unix(d.socket.to_str().unwrap(), 60, bollard::API_DEFAULT_VERSION).unwrap()
}

#[test]
fn bollard_version_and_ping_without_root() {
    let d = TestDaemon::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = client(&d);
        assert_eq!(c.ping().await.unwrap(), "OK");
        let v = c.version().await.unwrap();
        assert_eq!(v.api_version.as_deref(), Some("1.53"));
        let neg = c.clone().negotiate_version().await.unwrap();
        assert_eq!(neg.client_version().to_string(), "1.53");
        let info = c.info().await.unwrap();
        assert_eq!(info.images, Some(0));
        let err = c.inspect_image("nope").await.unwrap_err();
        assert!(
            matches!(
                err,
                bollard::errors::Error::DockerResponseServerError {
                    status_code: 404,
                    ..
                }
            ),
            "{err:?}"
        );
    });
}

#[test]
fn bollard_images() {
    let t = "bollard_images";
    if !berth_testutil::require_root(t) {
        return;
    }
    let Some(archive) = busybox(t) else { return };
    let d = TestDaemon::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = client(&d);
        let bytes = tokio::fs::read(&archive).await.unwrap();
        let mut s = c.import_image(
            bollard::query_parameters::ImportImageOptions::default(),
            bollard::body_full(bytes.into()),
            None,
        );
        let mut msgs = Vec::new();
        while let Some(m) = s.next().await {
            msgs.push(m.unwrap());
        }
        assert!(
            msgs.iter()
                .any(|m| m.stream.as_deref() == Some("Loaded image: busybox:latest\n")),
            "{msgs:?}"
        );
        let list = c
            .list_images(Some(ListImagesOptions::default()))
            .await
            .unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].id, BUSYBOX_ID);
        assert_eq!(list[0].repo_tags, vec!["busybox:latest"]);
        let opts = TagImageOptions {
            repo: Some("bollard/box".into()),
            tag: Some("t1".into()),
        };
        c.tag_image("busybox", Some(opts)).await.unwrap();
        // Events: the backlog (since=0) arrives first, which proves the subscription is live.
        let opts = EventsOptions {
            since: Some("0".into()),
            filters: Some(HashMap::from([(
                "type".to_string(),
                vec!["image".to_string()],
            )])),
            ..Default::default()
        };
        let mut events = Box::pin(c.events(Some(opts)));
        assert_eq!(next_action(&mut events).await, "load");
        assert_eq!(next_action(&mut events).await, "tag");
        let i = c.inspect_image("bollard/box:t1").await.unwrap();
        assert_eq!(i.id.as_deref(), Some(BUSYBOX_ID));
        let h = c.image_history("busybox").await.unwrap();
        assert_eq!(h[0].id, BUSYBOX_ID);
        let rm = c
            .remove_image(
                "busybox",
                Some(RemoveImageOptions {
                    force: true,
                    ..Default::default()
                }),
                None,
            )
            .await
            .unwrap();
        assert_eq!(rm[0].untagged.as_deref(), Some("busybox:latest"));
        assert_eq!(
            next_action(&mut events).await,
            "untag",
            "live event after the backlog"
        );
        let df = c
            .df(None::<bollard::query_parameters::DataUsageOptions>)
            .await
            .unwrap();
        assert_eq!(df.image_usage.and_then(|u| u.total_count), Some(1));
    });
}
