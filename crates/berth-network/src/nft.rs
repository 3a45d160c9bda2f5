//! Thin apply layer for nftables: feeds rendered scripts to `nft -f -` (one atomic transaction)
//! and reads berth's table back through the `nftables` crate's JSON schema.

use std::process::Stdio;

use nftables::schema::{NfListObject, NfObject};
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};

/// Apply an nft script atomically; on failure nothing of it is in force.
pub async fn apply(table: &str, script: &str) -> Result<()> {
    tracing::debug!(table, "applying nft script");
    let mut child = tokio::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(Error::io("running", "nft"))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin
        .write_all(script.as_bytes())
        .await
        .map_err(Error::io("writing to", "nft"))?;
    drop(stdin);
    let out = child
        .wait_with_output()
        .await
        .map_err(Error::io("waiting for", "nft"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Nft {
            table: table.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Whether `table inet <table>` exists.
pub async fn table_exists(table: &str) -> Result<bool> {
    Ok(list_table(table).await?.is_some())
}

/// Rules of berth's table as nft's JSON objects, `None` when the table does not exist.
pub async fn list_table(table: &str) -> Result<Option<Vec<NfListObject<'static>>>> {
    let args = ["list", "table", "inet", table];
    match nftables::helper::get_current_ruleset_with_args_async(nftables::helper::DEFAULT_NFT, args)
        .await
    {
        Ok(rs) => Ok(Some(
            rs.objects
                .into_owned()
                .into_iter()
                .filter_map(|o| match o {
                    NfObject::ListObject(l) => Some(l),
                    NfObject::CmdObject(_) => None,
                })
                .collect(),
        )),
        Err(nftables::helper::NftablesError::NftFailed { stderr, .. })
            if stderr.contains("No such file") =>
        {
            Ok(None)
        }
        Err(e) => Err(Error::Nft {
            table: table.to_string(),
            stderr: e.to_string(),
        }),
    }
}

/// The whole ruleset as `nft -j list ruleset` prints it (for [`crate::hostfw`]).
pub async fn ruleset_json() -> Result<serde_json::Value> {
    let raw = nftables::helper::get_current_ruleset_raw_async(
        nftables::helper::DEFAULT_NFT,
        ["list", "ruleset"],
    )
    .await
    .map_err(|e| Error::Nft {
        table: "(ruleset)".into(),
        stderr: e.to_string(),
    })?;
    serde_json::from_str(&raw).map_err(|e| Error::Nft {
        table: "(ruleset)".into(),
        stderr: format!("unparseable nft json: {e}"),
    })
}
