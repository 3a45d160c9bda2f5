//! Dependency order: services grouped in waves, each wave depending only on earlier ones (the
//! services of one wave start in parallel); a cycle is reported as its path.

use std::collections::BTreeMap;

/// Waves of services in start order, or the cycle (`a`, `b`, `a`) that prevents one.
pub fn start_order<'a>(
    deps: &BTreeMap<&'a str, Vec<&'a str>>,
) -> Result<Vec<Vec<&'a str>>, Vec<String>> {
    let mut done: Vec<&str> = Vec::new();
    let mut waves = Vec::new();
    while done.len() < deps.len() {
        let wave: Vec<&str> = deps
            .iter()
            .filter(|(n, _)| !done.contains(n))
            .filter(|(_, ds)| ds.iter().all(|d| done.contains(d) || !deps.contains_key(d)))
            .map(|(n, _)| *n)
            .collect();
        if wave.is_empty() {
            return Err(find_cycle(deps, &done));
        }
        done.extend(&wave);
        waves.push(wave);
    }
    Ok(waves)
}

/// A cycle among the services not yet ordered: walk dependencies until one repeats.
fn find_cycle(deps: &BTreeMap<&str, Vec<&str>>, done: &[&str]) -> Vec<String> {
    let start = deps
        .keys()
        .find(|n| !done.contains(n))
        .copied()
        .unwrap_or_default();
    let mut path = vec![start];
    let mut cur = start;
    loop {
        let next = deps[cur]
            .iter()
            .find(|d| !done.contains(d) && deps.contains_key(*d))
            .copied()
            .unwrap_or(start);
        if let Some(i) = path.iter().position(|p| *p == next) {
            let mut cycle: Vec<String> = path[i..].iter().map(|s| s.to_string()).collect();
            cycle.push(next.to_string());
            return cycle;
        }
        path.push(next);
        cur = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waves_and_cycles() {
        let deps: BTreeMap<&str, Vec<&str>> = [
            ("web", vec!["db", "cache"]),
            ("db", vec![]),
            ("cache", vec![]),
            ("worker", vec!["web"]),
        ]
        .into();
        assert_eq!(
            start_order(&deps).unwrap(),
            vec![vec!["cache", "db"], vec!["web"], vec!["worker"]]
        );
        let deps: BTreeMap<&str, Vec<&str>> =
            [("a", vec!["b"]), ("b", vec!["a"]), ("c", vec![])].into();
        assert_eq!(start_order(&deps).unwrap_err(), vec!["a", "b", "a"]);
    }
}
