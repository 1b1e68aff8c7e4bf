//! The admin subcommands ([`crate::cli::Command`]) run against the registry:
//! one handler per subcommand. Each prints its result as one readable line per
//! item, or as one JSON value with `--json`.

use crate::auth::{SecretKind, fingerprint, new_secret, secret_hash};
use crate::cli::{Command, ContactCommand, KeyCommand, ServerCommand, TalkerCommand, UserCommand};
use crate::registry::{
    ContactTarget, ControllerTrust, MAX_FIELD, Media, Server, Transport, aor_domain,
    printable_field,
};
use crate::signing::{KEY_RELOAD_INTERVAL, KeyRing};
use crate::storage::{NewAccount, NewSipPhone, Store, TokenSelector};
use anyhow::{Context, bail};
use serde_json::{Value, json};

/// How long a talker enrollment token stays usable, in seconds.
const ENROLLMENT_TOKEN_SECS: i64 = 3600;

/// Runs one admin command against `store`, printing its result (JSON when
/// `as_json`).
pub async fn run_admin(store: &Store, command: Command, as_json: bool) -> anyhow::Result<()> {
    let out = AdminOutput { as_json };
    match command {
        Command::User(command) => run_user(store, command, out).await,
        Command::Server(ServerCommand::Add {
            domain,
            proxy,
            transport,
            cost,
            trust,
        }) => {
            let server = Server {
                domain,
                proxy: proxy.to_string(),
                transport: Transport::parse(&transport).unwrap_or(Transport::Tcp),
                cost,
                trust: ControllerTrust::parse(&trust).unwrap_or(ControllerTrust::None),
            };
            add_server(store, &server, out).await
        }
        Command::Server(ServerCommand::List) => list_servers(store, out).await,
        Command::Contact(command) => add_contact(store, command, out).await,
        Command::Talker(TalkerCommand::Remove { id }) => remove_talker(store, &id, out).await,
        Command::Talker(TalkerCommand::Rotate { id }) => {
            rotate_talker_credential(store, &id, out).await
        }
        Command::Talker(command) => add_sip_phone(store, command, out).await,
        Command::EnrollToken { user } => new_enrollment_token(store, &user, out).await,
        Command::Key(command) => run_key(store, command, out).await,
        Command::RotateKey => {
            let revoke = KeyCommand::Rotate { revoke: Vec::new() };
            run_key(store, revoke, out).await
        }
        Command::Pki(command) => crate::pki::run_pki(command, as_json),
    }
}

/// Where an admin command's result goes: one JSON value on stdout with
/// `--json`, readable lines otherwise.
#[derive(Debug, Clone, Copy)]
struct AdminOutput {
    as_json: bool,
}

impl AdminOutput {
    /// One result: `value`, or the line `text`.
    fn item(self, value: &Value, text: &str) {
        if self.as_json {
            println!("{value}");
        } else {
            println!("{text}");
        }
    }

    /// A listing: `value`, or one line per entry.
    fn listing(self, value: &Value, lines: impl IntoIterator<Item = String>) {
        if self.as_json {
            println!("{value}");
        } else {
            for line in lines {
                println!("{line}");
            }
        }
    }
}

/// `matcher user ...`.
async fn run_user(store: &Store, command: UserCommand, out: AdminOutput) -> anyhow::Result<()> {
    match command {
        UserCommand::Add { name, display_name } => {
            let display = display_name.unwrap_or_else(|| name.clone());
            let user = store.add_user(&name, &display).await?;
            out.item(
                &json!(user),
                &format!("added user {} (id {})", user.name, user.id),
            );
        }
        UserCommand::List => {
            let users = store.users().await?;
            let lines = users
                .iter()
                .map(|u| format!("{}\t{}\t{}", u.id, u.name, u.display_name));
            out.listing(&json!(users), lines);
        }
        UserCommand::Token { name, label } => new_api_token(store, &name, &label, out).await?,
        UserCommand::Tokens { name } => {
            let user = store.require_user(&name).await?;
            let tokens = store.api_tokens(user.id).await?;
            let lines = tokens
                .iter()
                .map(|t| format!("{}\t{}\t{}", t.fingerprint, t.label, t.created_at));
            out.listing(&json!({"user": user.name, "tokens": tokens}), lines);
        }
        UserCommand::RevokeToken {
            name,
            label,
            fingerprint,
            all,
        } => {
            let which = match (&label, &fingerprint, all) {
                (Some(label), _, _) => TokenSelector::Label(label),
                (_, Some(print), _) => TokenSelector::Fingerprint(print),
                _ => TokenSelector::All,
            };
            revoke_api_tokens(store, &name, which, out).await?;
        }
    }
    Ok(())
}

/// `matcher user token`: a new API bearer token, printed once and stored hashed.
async fn new_api_token(
    store: &Store,
    name: &str,
    label: &str,
    out: AdminOutput,
) -> anyhow::Result<()> {
    let user = store.require_user(name).await?;
    let token = new_secret(SecretKind::UserToken);
    let hash = secret_hash(SecretKind::UserToken, &token).context("hashing the token")?;
    store.add_api_token(user.id, &hash, label).await?;
    out.item(
        &json!({"user": user.name, "token": token, "label": label, "fingerprint": fingerprint(&hash)}),
        &token,
    );
    Ok(())
}

/// `matcher user revoke-token`: an error when no token matches, so a typo is
/// not mistaken for a revocation.
async fn revoke_api_tokens(
    store: &Store,
    name: &str,
    which: TokenSelector<'_>,
    out: AdminOutput,
) -> anyhow::Result<()> {
    let user = store.require_user(name).await?;
    let revoked = store.revoke_api_tokens(user.id, which).await?;
    if revoked == 0 {
        bail!(
            "no API token of {} matches (see `matcher user tokens {}`)",
            user.name,
            user.name
        );
    }
    out.item(
        &json!({"user": user.name, "revoked": revoked}),
        &format!("revoked {revoked} API token(s) of {}", user.name),
    );
    Ok(())
}

/// `matcher server add`.
async fn add_server(store: &Store, server: &Server, out: AdminOutput) -> anyhow::Result<()> {
    store.add_server(server).await?;
    out.item(
        &json!(server),
        &format!("added server {} at {}", server.domain, server.proxy),
    );
    Ok(())
}

/// `matcher server list`.
async fn list_servers(store: &Store, out: AdminOutput) -> anyhow::Result<()> {
    let servers = store.servers().await?;
    let lines = servers.iter().map(|s| {
        format!(
            "{}\t{} ({})\tcost {}\ttrust {}",
            s.domain,
            s.proxy,
            s.transport.as_str(),
            s.cost,
            s.trust.as_str()
        )
    });
    out.listing(&json!(servers), lines);
    Ok(())
}

/// `matcher contact add`: another user, or a plain address on a known server.
async fn add_contact(
    store: &Store,
    command: ContactCommand,
    out: AdminOutput,
) -> anyhow::Result<()> {
    let ContactCommand::Add {
        owner,
        name,
        user,
        address,
    } = command;
    let owner = store.require_user(&owner).await?;
    let target = match (user, address) {
        (Some(other), None) => ContactTarget::User {
            user: store.require_user(&other).await?.id,
        },
        (None, Some(aor)) => {
            let server = known_server_of(store, "--address", &aor).await?;
            ContactTarget::Address { aor, server }
        }
        _ => bail!("give exactly one of --user and --address"),
    };
    let contact = store.add_contact(owner.id, &name, &target).await?;
    out.item(
        &json!(contact),
        &format!("added contact {} for {}", contact.name, owner.name),
    );
    Ok(())
}

/// `matcher talker add`: a third-party SIP phone as a user's talker.
async fn add_sip_phone(
    store: &Store,
    command: TalkerCommand,
    out: AdminOutput,
) -> anyhow::Result<()> {
    let TalkerCommand::Add {
        owner,
        id,
        name,
        kind,
        video,
        accounts,
    } = command
    else {
        bail!("not `matcher talker add`");
    };
    // The same rule as an enrolling agent's id.
    if !printable_field(&id) {
        bail!("talker id {id:?}: 1..={MAX_FIELD} printable characters");
    }
    let owner = store.require_user(&owner).await?;
    let mut new_accounts = Vec::new();
    for aor in accounts {
        let server = known_server_of(store, "--account", &aor).await?;
        new_accounts.push(NewAccount { aor, server });
    }
    let phone = NewSipPhone {
        name: name.unwrap_or_else(|| id.clone()),
        id,
        owner: owner.id,
        kind,
        media: Media::with_video(video),
        accounts: new_accounts,
    };
    let talker = store.add_sip_phone(&phone).await?;
    out.item(
        &json!(talker),
        &format!(
            "added SIP phone {} ({}) for {}",
            talker.id, talker.name, owner.name
        ),
    );
    Ok(())
}

/// `matcher key ...`.
async fn run_key(store: &Store, command: KeyCommand, out: AdminOutput) -> anyhow::Result<()> {
    let reread = KEY_RELOAD_INTERVAL.as_secs();
    match command {
        KeyCommand::Rotate { revoke } => {
            let kid = KeyRing::rotate(store, &revoke).await?;
            let mut text = format!("new signing key {kid}");
            if !revoke.is_empty() {
                text.push_str(&format!("; revoked {}", revoke.join(", ")));
            }
            text.push_str(&format!(
                " (running matchers take it within {reread} s, talkers at their next heartbeat)"
            ));
            out.item(&json!({"kid": kid, "revoked": revoke}), &text);
        }
        KeyCommand::Revoke { kid } => {
            KeyRing::revoke(store, &kid).await?;
            out.item(
                &json!({"revoked": [kid]}),
                &format!(
                    "revoked signing key {kid} (running matchers stop publishing it within \
                     {reread} s, talkers drop it at their next heartbeat)"
                ),
            );
        }
        KeyCommand::List => {
            let keys = store.signing_key_history().await?;
            let state = |k: &crate::storage::SigningKey| match (k.retired_at, k.revoked_at) {
                (_, Some(_)) => "revoked",
                (Some(_), None) => "retired",
                (None, None) => "active",
            };
            let value: Vec<Value> = keys
                .iter()
                .map(|k| {
                    json!({"kid": k.kid, "state": state(k), "created_at": k.created_at,
                        "retired_at": k.retired_at, "revoked_at": k.revoked_at})
                })
                .collect();
            let lines = keys
                .iter()
                .map(|k| format!("{}\t{}\t{}", k.kid, state(k), k.created_at));
            out.listing(&json!(value), lines);
        }
    }
    Ok(())
}

/// `matcher talker remove`: an error when there is no such talker, so a typo
/// is not mistaken for a removal.
async fn remove_talker(store: &Store, id: &str, out: AdminOutput) -> anyhow::Result<()> {
    if !store.remove_talker(id).await? {
        bail!("no talker {id:?}");
    }
    out.item(
        &json!({"talker": id, "removed": true}),
        &format!("removed talker {id}"),
    );
    Ok(())
}

/// `matcher talker rotate`: a new heartbeat credential, printed once and
/// stored hashed (the agent's `enrollment.json` takes it as `credential`).
async fn rotate_talker_credential(store: &Store, id: &str, out: AdminOutput) -> anyhow::Result<()> {
    let credential = new_secret(SecretKind::TalkerCredential);
    let hash =
        secret_hash(SecretKind::TalkerCredential, &credential).context("hashing the credential")?;
    store
        .rotate_talker_credential(id, &hash)
        .await
        .map_err(|e| match e {
            crate::storage::StorageError::NotFound(_) => {
                anyhow::anyhow!("no enrolled talker agent {id:?} (a SIP phone has no credential)")
            }
            other => other.into(),
        })?;
    out.item(
        &json!({"talker": id, "credential": credential}),
        &credential,
    );
    Ok(())
}

/// The domain of `aor`, given with `flag`, when it is a `sip:user@domain`
/// address on a server the registry knows.
async fn known_server_of(store: &Store, flag: &str, aor: &str) -> anyhow::Result<String> {
    let server = aor_domain(aor)
        .map(str::to_owned)
        .with_context(|| format!("{flag} {aor:?} is not sip:user@domain"))?;
    if store.server(&server).await?.is_none() {
        bail!("{flag} {aor:?}: unknown server {server:?} (add it first)");
    }
    Ok(server)
}

/// `matcher enroll-token`: a one-time talker enrollment token for `user`.
async fn new_enrollment_token(store: &Store, user: &str, out: AdminOutput) -> anyhow::Result<()> {
    let user = store.require_user(user).await?;
    let token = new_secret(SecretKind::Enrollment);
    let hash = secret_hash(SecretKind::Enrollment, &token).context("hashing the token")?;
    store
        .add_enrollment_token(
            user.id,
            &hash,
            crate::storage::now_secs() + ENROLLMENT_TOKEN_SECS,
        )
        .await?;
    out.item(
        &json!({"user": user.name, "token": token, "expires_in": ENROLLMENT_TOKEN_SECS}),
        &token,
    );
    Ok(())
}
