//! SIP servers: the domains accounts live on and how to reach their proxies.

use super::{Result, StorageError, Store, conflict_or};
use crate::registry::{ControllerTrust, Server, Transport};
use sqlx::Row;
use sqlx::any::AnyRow;

fn server_from(row: &AnyRow) -> Result<Server> {
    server_from_prefixed(row, "")
}

/// A server from columns named `{prefix}domain`, `{prefix}proxy`, ...
pub(super) fn server_from_prefixed(row: &AnyRow, prefix: &str) -> Result<Server> {
    let column = |name: &str| format!("{prefix}{name}");
    let transport: String = row.try_get(column("transport").as_str())?;
    let trust: String = row.try_get(column("trust").as_str())?;
    let cost: i64 = row.try_get(column("cost").as_str())?;
    Ok(Server {
        domain: row.try_get(column("domain").as_str())?,
        proxy: row.try_get(column("proxy").as_str())?,
        transport: Transport::parse(&transport)
            .ok_or_else(|| StorageError::Corrupt(format!("server transport {transport:?}")))?,
        cost: u32::try_from(cost)
            .map_err(|_| StorageError::Corrupt(format!("server cost {cost}")))?,
        trust: ControllerTrust::parse(&trust)
            .ok_or_else(|| StorageError::Corrupt(format!("server trust {trust:?}")))?,
    })
}

impl Store {
    /// Adds a server; [`StorageError::Conflict`] when its domain is known.
    pub async fn add_server(&self, server: &Server) -> Result<()> {
        sqlx::query(
            "INSERT INTO servers (domain, proxy, transport, cost, trust) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&server.domain)
        .bind(&server.proxy)
        .bind(server.transport.as_str())
        .bind(i64::from(server.cost))
        .bind(server.trust.as_str())
        .execute(self.pool())
        .await
        .map_err(|e| conflict_or(e, || format!("server {:?}", server.domain)))?;
        Ok(())
    }

    /// Every server, by domain.
    pub async fn servers(&self) -> Result<Vec<Server>> {
        let rows = sqlx::query(
            "SELECT domain, proxy, transport, cost, trust FROM servers ORDER BY domain",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(server_from).collect()
    }

    /// The server of `domain`.
    pub async fn server(&self, domain: &str) -> Result<Option<Server>> {
        let row = sqlx::query(
            "SELECT domain, proxy, transport, cost, trust FROM servers WHERE domain = $1",
        )
        .bind(domain)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(server_from).transpose()
    }
}
