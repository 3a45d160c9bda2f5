//! Pure analysis of the host's own nftables ruleset (as `nft -j list ruleset` prints it) to find
//! input-hook filtering that published ports would bypass, so berth can say so instead of
//! bypassing it silently (see the firewall notes in [`crate::rules`]).
//!
//! Looked at: base chains on the `input` hook in every table except berth's own, and regular
//! chains they jump/goto to in the same table. Reported: a drop policy, and drop/reject rules
//! that match the published host port (`tcp dport 8080`, sets, ranges). Rules written with
//! iptables-legacy are invisible to nft; iptables-nft rules show as `xt` matches, which are not
//! decoded (a drop policy on their INPUT chain is still seen).

use std::collections::{BTreeSet, VecDeque};

use serde_json::Value;

use crate::model::PortMapping;

fn objects<'a>(rs: &'a Value, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    rs.get("nftables")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(move |o| o.get(kind))
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn port_matches(right: &Value, port: u16) -> bool {
    let p = u64::from(port);
    match right {
        Value::Number(n) => n.as_u64() == Some(p),
        Value::Object(o) => {
            if let Some(set) = o.get("set").and_then(Value::as_array) {
                set.iter().any(|e| port_matches(e, port))
            } else if let Some(r) = o.get("range").and_then(Value::as_array) {
                matches!((r.first().and_then(Value::as_u64), r.get(1).and_then(Value::as_u64)),
                    (Some(lo), Some(hi)) if lo <= p && p <= hi)
            } else {
                false
            }
        }
        _ => false,
    }
}

/// Does this rule drop/reject traffic to `proto` dport `port`?
fn rule_blocks(expr: &[Value], proto: &str, port: u16) -> bool {
    let verdict = expr
        .iter()
        .any(|e| e.get("drop").is_some() || e.get("reject").is_some());
    let matches_port = expr.iter().any(|e| {
        let Some(m) = e.get("match") else {
            return false;
        };
        if !matches!(s(m, "op"), "==" | "in") {
            return false;
        }
        let Some(pl) = m.get("left").and_then(|l| l.get("payload")) else {
            return false;
        };
        s(pl, "field") == "dport"
            && matches!(s(pl, "protocol"), p if p == proto || p == "th")
            && m.get("right").is_some_and(|r| port_matches(r, port))
    });
    verdict && matches_port
}

/// Human-readable warnings for every host input filter that the given published ports bypass.
pub fn bypassed_input_filters(
    ruleset: &Value,
    own_table: &str,
    mappings: &[PortMapping],
) -> Vec<String> {
    let mut out = vec![];
    let mut reachable: BTreeSet<(String, String, String)> = BTreeSet::new();
    let mut queue = VecDeque::new();
    for c in objects(ruleset, "chain") {
        if s(c, "hook") == "input" && s(c, "table") != own_table {
            let key = (
                s(c, "family").to_string(),
                s(c, "table").to_string(),
                s(c, "name").to_string(),
            );
            if s(c, "policy") == "drop" && !mappings.is_empty() {
                out.push(format!(
                    "host chain {} {} {} drops input by policy, but published ports are forwarded, not input: restrict them in berth's `berth-user` chain",
                    key.0, key.1, key.2
                ));
            }
            queue.push_back(key);
        }
    }
    let rules: Vec<&Value> = objects(ruleset, "rule").collect();
    while let Some(key) = queue.pop_front() {
        if !reachable.insert(key.clone()) {
            continue;
        }
        for r in rules
            .iter()
            .filter(|r| s(r, "family") == key.0 && s(r, "table") == key.1 && s(r, "chain") == key.2)
        {
            let expr = r
                .get("expr")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            for e in expr {
                for k in ["jump", "goto"] {
                    if let Some(t) = e
                        .get(k)
                        .and_then(|j| j.get("target"))
                        .and_then(Value::as_str)
                    {
                        queue.push_back((key.0.clone(), key.1.clone(), t.to_string()));
                    }
                }
            }
            for m in mappings {
                if rule_blocks(expr, &m.proto.to_string(), m.host_port) {
                    out.push(format!(
                        "host rule in {} {} {} blocks {}/{} on input, but the published port is forwarded and bypasses it: add the rule to berth's `berth-user` chain, matching `meta l4proto {} ct original proto-dst {}`",
                        key.0, key.1, key.2, m.proto, m.host_port, m.proto, m.host_port
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Proto;

    fn pm(port: u16, proto: Proto) -> PortMapping {
        PortMapping {
            host_ip: "0.0.0.0".parse().unwrap(),
            host_port: port,
            container_port: 80,
            proto,
        }
    }

    #[test]
    fn finds_port_rules_sets_ranges_jumps_and_policy() {
        let rs: Value = serde_json::from_str(r#"{"nftables":[
          {"chain":{"family":"inet","table":"h","name":"input","hook":"input","prio":0,"policy":"drop"}},
          {"chain":{"family":"inet","table":"h","name":"sub"}},
          {"chain":{"family":"inet","table":"berth","name":"x","hook":"input","policy":"drop"}},
          {"rule":{"family":"inet","table":"h","chain":"input","expr":[{"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":8080}},{"drop":null}]}},
          {"rule":{"family":"inet","table":"h","chain":"input","expr":[{"jump":{"target":"sub"}}]}},
          {"rule":{"family":"inet","table":"h","chain":"sub","expr":[{"match":{"op":"==","left":{"payload":{"protocol":"udp","field":"dport"}},"right":{"range":[1000,2000]}}},{"reject":null}]}},
          {"rule":{"family":"inet","table":"h","chain":"input","expr":[{"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":{"set":[80,443]}}},{"accept":null}]}}
        ]}"#).unwrap();
        let w = bypassed_input_filters(
            &rs,
            "berth",
            &[
                pm(8080, Proto::Tcp),
                pm(1500, Proto::Udp),
                pm(443, Proto::Tcp),
            ],
        );
        assert_eq!(w.len(), 3, "{w:#?}");
        assert!(w[0].contains("policy"));
        assert!(w.iter().any(|x| x.contains("tcp/8080")));
        assert!(w.iter().any(|x| x.contains("udp/1500")));
        assert!(
            !w.iter().any(|x| x.contains("443")),
            "accept rules are not warnings"
        );
        assert!(
            !w.iter().any(|x| x.contains("berth x")),
            "berth's own table is skipped"
        );
    }
}
