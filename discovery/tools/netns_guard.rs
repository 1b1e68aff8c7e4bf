//! Shared by the discovery command-line tools: refuse to run mDNS in the machine's
//! main network namespace unless asked to.

/// Fails when this process shares PID 1's network namespace and `allow` is false.
pub fn refuse_host_netns(allow: bool) -> anyhow::Result<()> {
    if allow {
        return Ok(());
    }
    let ours = std::fs::read_link("/proc/self/ns/net");
    let init = std::fs::read_link("/proc/1/ns/net");
    match (ours, init) {
        (Ok(a), Ok(b)) if a == b => anyhow::bail!(
            "refusing to run mDNS in the main network namespace; \
             run inside `ip netns exec` or pass --allow-host-netns"
        ),
        _ => Ok(()),
    }
}
