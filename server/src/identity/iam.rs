//! Who may do what: policies attached to users and groups, evaluated by
//! [`crate::identity::policy`], plus Nubo's fixed rules, and the audit log.
//!
//! Order: an explicit Deny in any policy wins (for everyone but
//! administrators); then administrators may do anything; then a
//! repository's creator may do anything with it; then an Allow allows;
//! every user may create repositories unless a policy denies it; anything
//! else is denied.

use serde::Serialize;
use sqlx::SqlitePool;
use utoipa::ToSchema;

use crate::db::{new_id, now_ms, rfc3339};
use crate::error::{Error, Result};
use crate::identity::accounts::User;
use crate::identity::policy::{self, Decision, Policy, Request};

/// What a request acts on, as the rules need it.
pub struct Target<'a> {
    /// The repository's name (or the stored value's ARN), for the audit log.
    pub name: &'a str,
    /// The creator's user id, when the repository exists.
    pub owner_id: Option<&'a str>,
    /// The resource's ARN, which policies match.
    pub resource: String,
}

impl<'a> Target<'a> {
    /// A repository, existing (with its creator) or not.
    pub fn repo(name: &'a str, owner_id: Option<&'a str>) -> Target<'a> {
        Target {
            name,
            owner_id,
            resource: policy::repo_arn(name),
        }
    }

    /// A pipeline's action; its creator has the creator's rule.
    pub fn pipeline_action(name: &'a str, owner_id: &'a str, resource: String) -> Target<'a> {
        Target {
            name,
            owner_id: Some(owner_id),
            resource,
        }
    }

    /// A parameter (`parameter`) or secret (`secret`) of the stores, which
    /// has no creator rule: only a policy (or being an administrator)
    /// gives access.
    pub fn stored_value(arn: &'a str) -> Target<'a> {
        Target {
            name: arn,
            owner_id: None,
            resource: arn.to_string(),
        }
    }
}

/// A user's policies and those of their groups, with where each comes from.
pub async fn policies_for(pool: &SqlitePool, user: &User) -> Result<Vec<(String, Policy)>> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT 'user/' || $2 || '/' || p.name, p.document, p.name FROM policies p
         WHERE p.principal_kind = 'user' AND p.principal_id = $1
         UNION ALL
         SELECT 'group/' || g.name || '/' || p.name, p.document, p.name FROM policies p
         JOIN user_groups g ON p.principal_kind = 'group' AND p.principal_id = g.id
         JOIN group_members m ON m.group_id = g.id AND m.user_id = $1",
    )
    .bind(&user.id)
    .bind(&user.name)
    .fetch_all(pool)
    .await?;
    let mut out = Vec::new();
    for (source, document, _) in rows {
        // Documents are validated when stored; one that no longer parses
        // is skipped loudly rather than failing every request.
        match policy::parse(&document) {
            Ok(p) => out.push((source, p)),
            Err(e) => tracing::error!(policy = %source, error = %e, "stored policy does not parse"),
        }
    }
    Ok(out)
}

/// Decides without recording (for the simulator and for filtering lists).
pub async fn decide(
    pool: &SqlitePool,
    user: &User,
    action: &str,
    target: &Target<'_>,
    reference: Option<&str>,
) -> Result<Decision> {
    let policies = policies_for(pool, user).await?;
    Ok(decide_with(&policies, user, action, target, reference))
}

/// [`decide`] with the user's policies already loaded.
pub fn decide_with(
    policies: &[(String, Policy)],
    user: &User,
    action: &str,
    target: &Target<'_>,
    reference: Option<&str>,
) -> Decision {
    let evaluated = policy::evaluate(
        policies,
        &Request {
            action,
            resource: &target.resource,
            reference,
        },
    );
    let fixed = |basis: &str| Decision {
        allowed: true,
        basis: basis.into(),
        statement: None,
    };
    if user.admin {
        fixed("administrator")
    } else if evaluated.basis == "explicit-deny" {
        evaluated
    } else if target.owner_id == Some(user.id.as_str()) {
        fixed("creator")
    } else if evaluated.allowed {
        evaluated
    } else if action == "codecommit:CreateRepository" {
        fixed("default-create")
    } else {
        evaluated
    }
}

/// Decides and records the decision in the audit log.
pub async fn authorize(
    pool: &SqlitePool,
    user: &User,
    action: &str,
    target: &Target<'_>,
    reference: Option<&str>,
) -> Result<Decision> {
    Ok(authorize_entry(pool, user, action, target, reference)
        .await?
        .0)
}

/// An audit log entry, to record what became of the action it allowed.
pub struct AuditId(String);

/// Like [`require`], answering the audit entry, whose outcome the caller
/// records with [`record_outcome`] once the action is done or has failed.
pub async fn require_then(
    pool: &SqlitePool,
    user: &User,
    action: &str,
    target: &Target<'_>,
) -> Result<AuditId> {
    let (d, id) = authorize_entry(pool, user, action, target, None).await?;
    if d.allowed {
        Ok(id)
    } else {
        Err(denied(user, action, target.name, None, &d))
    }
}

/// Records what became of an allowed action: `Ok` as done, an error by its
/// message. Failing to record is logged, never the caller's failure.
pub async fn record_outcome<T>(pool: &SqlitePool, entry: &AuditId, result: &Result<T>) {
    let outcome = match result {
        Ok(_) => "done".to_string(),
        Err(e) => format!("failed: {}", e.public_message()),
    };
    let written = sqlx::query("UPDATE audit_log SET outcome = $1 WHERE id = $2")
        .bind(&outcome)
        .bind(&entry.0)
        .execute(pool)
        .await;
    if let Err(e) = written {
        tracing::warn!(error = %e, "the audit log's outcome was not recorded");
    }
}

async fn authorize_entry(
    pool: &SqlitePool,
    user: &User,
    action: &str,
    target: &Target<'_>,
    reference: Option<&str>,
) -> Result<(Decision, AuditId)> {
    let decision = decide(pool, user, action, target, reference).await?;
    let id = new_id();
    sqlx::query(
        "INSERT INTO audit_log (id, at, user_name, action, repo, ref_name, allowed, basis, statement)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&id)
    .bind(now_ms())
    .bind(&user.name)
    .bind(action)
    .bind(target.name)
    .bind(reference)
    .bind(decision.allowed)
    .bind(&decision.basis)
    .bind(&decision.statement)
    .execute(pool)
    .await?;
    Ok((decision, AuditId(id)))
}

/// Why a decision denied, in words for the user.
pub fn denial_message(
    user: &User,
    action: &str,
    repo: &str,
    reference: Option<&str>,
    d: &Decision,
) -> String {
    let on = match reference {
        Some(r) => format!("{repo} ({r})"),
        None => repo.to_string(),
    };
    match &d.statement {
        Some(s) => format!(
            "{} is not allowed to perform {action} on {on}: explicit deny in {s}",
            user.name
        ),
        None => format!(
            "{} is not allowed to perform {action} on {on}: no policy allows it",
            user.name
        ),
    }
}

/// What `action` on `target` is, in words ("delete the repository app").
pub fn action_in_words(action: &str, target: &str, reference: Option<&str>) -> String {
    let on_ref = reference.map(|r| format!(" ({r})")).unwrap_or_default();
    match action {
        "codecommit:GitPull" => format!("read the repository {target}"),
        "codecommit:GitPush" => format!("push to the repository {target}{on_ref}"),
        "codecommit:CreateRepository" => format!("create a repository named {target}"),
        "codecommit:DeleteRepository" => format!("delete the repository {target}"),
        "codecommit:GetRepository" => format!("see the repository {target}"),
        "codecommit:ListRepositories" => "list repositories".to_string(),
        "secretsmanager:GetSecretValue" => format!("read the secret {target}"),
        "ssm:GetParameters" => format!("read the parameter {target}"),
        other => format!("do {other} on {target}"),
    }
}

/// The refusal of a denied decision: the technical message (action,
/// statement) and the same in words.
pub fn denied(
    user: &User,
    action: &str,
    target: &str,
    reference: Option<&str>,
    d: &Decision,
) -> Error {
    Error::Denied {
        message: denial_message(user, action, target, reference, d),
        words: format!(
            "You do not have permission to {}. {}",
            action_in_words(action, target, reference),
            if action.starts_with("codecommit:") && action != "codecommit:CreateRepository" {
                "Ask the repository's owner or an administrator for access."
            } else {
                "Ask an administrator for access."
            }
        ),
    }
}

/// Fails with 403 and the reason unless allowed.
pub async fn require(
    pool: &SqlitePool,
    user: &User,
    action: &str,
    target: &Target<'_>,
    reference: Option<&str>,
) -> Result<()> {
    let d = authorize(pool, user, action, target, reference).await?;
    if d.allowed {
        Ok(())
    } else {
        Err(denied(user, action, target.name, reference, &d))
    }
}

// ---- storage of groups and policies ----

fn check_policy_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '+' | '=' | ',' | '.' | '@' | '_' | '-')
        });
    if ok {
        Ok(())
    } else {
        Err(Error::Unprocessable(format!(
            "policy name {name:?} is not allowed: use 1-128 of letters, digits and +=,.@_-"
        )))
    }
}

/// A stored policy.
#[derive(Debug, Serialize, ToSchema)]
pub struct StoredPolicy {
    pub name: String,
    /// The policy document.
    #[schema(value_type = Object)]
    pub document: serde_json::Value,
    /// RFC 3339.
    pub updated_at: String,
}

/// Creates or replaces a policy on a principal (`user` or `group`).
pub async fn put_policy(
    pool: &SqlitePool,
    kind: &str,
    principal_id: &str,
    name: &str,
    document: &str,
) -> Result<StoredPolicy> {
    check_policy_name(name)?;
    policy::parse(document).map_err(Error::Unprocessable)?;
    let now = now_ms();
    sqlx::query(
        "INSERT INTO policies (principal_kind, principal_id, name, document, updated_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (principal_kind, principal_id, name) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at",
    )
    .bind(kind)
    .bind(principal_id)
    .bind(name)
    .bind(document)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(StoredPolicy {
        name: name.to_string(),
        document: serde_json::from_str(document).unwrap_or_default(),
        updated_at: rfc3339(now),
    })
}

pub async fn list_policies(
    pool: &SqlitePool,
    kind: &str,
    principal_id: &str,
) -> Result<Vec<StoredPolicy>> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT name, document, updated_at FROM policies WHERE principal_kind = $1 AND principal_id = $2 ORDER BY name",
    )
    .bind(kind)
    .bind(principal_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(name, doc, at)| StoredPolicy {
            name,
            document: serde_json::from_str(&doc).unwrap_or_default(),
            updated_at: rfc3339(at),
        })
        .collect())
}

pub async fn delete_policy(
    pool: &SqlitePool,
    kind: &str,
    principal_id: &str,
    name: &str,
) -> Result<()> {
    let done = sqlx::query(
        "DELETE FROM policies WHERE principal_kind = $1 AND principal_id = $2 AND name = $3",
    )
    .bind(kind)
    .bind(principal_id)
    .bind(name)
    .execute(pool)
    .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound(format!("no policy named {name:?}")));
    }
    Ok(())
}

/// A group and its members.
#[derive(Debug, Serialize, ToSchema)]
pub struct Group {
    #[serde(skip)]
    pub id: String,
    pub name: String,
    pub members: Vec<String>,
}

pub async fn create_group(pool: &SqlitePool, name: &str) -> Result<Group> {
    crate::identity::accounts::validate_name(name).map_err(|_| {
        Error::Unprocessable(format!(
            "group name {name:?} is not allowed: use 1-64 letters, digits, '.', '_' or '-'"
        ))
    })?;
    let id = new_id();
    let done = sqlx::query("INSERT INTO user_groups (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(&id)
        .bind(name)
        .bind(now_ms())
        .execute(pool)
        .await;
    match done {
        Ok(_) => Ok(Group {
            id,
            name: name.to_string(),
            members: vec![],
        }),
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => Err(Error::Conflict(format!(
            "a group named {name:?} already exists"
        ))),
        Err(e) => Err(e.into()),
    }
}

pub async fn find_group(pool: &SqlitePool, name: &str) -> Result<Group> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT id, name FROM user_groups WHERE lower(name) = lower($1)")
            .bind(name)
            .fetch_optional(pool)
            .await?;
    let (id, name) = row.ok_or_else(|| Error::NotFound(format!("no group named {name:?}")))?;
    let members: Vec<String> = sqlx::query_scalar(
        "SELECT u.name FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.group_id = $1 ORDER BY lower(u.name)",
    )
    .bind(&id)
    .fetch_all(pool)
    .await?;
    Ok(Group { id, name, members })
}

pub async fn list_groups(pool: &SqlitePool) -> Result<Vec<Group>> {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT name FROM user_groups ORDER BY lower(name)")
            .fetch_all(pool)
            .await?;
    let mut out = Vec::new();
    for n in names {
        out.push(find_group(pool, &n).await?);
    }
    Ok(out)
}

pub async fn set_member(pool: &SqlitePool, group: &Group, user: &User, member: bool) -> Result<()> {
    if member {
        sqlx::query(
            "INSERT INTO group_members (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(&group.id)
        .bind(&user.id)
        .execute(pool)
        .await?;
    } else {
        sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
            .bind(&group.id)
            .bind(&user.id)
            .execute(pool)
            .await?;
    }
    Ok(())
}

/// One audit log entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    /// RFC 3339.
    pub time: String,
    pub user: String,
    pub action: String,
    pub repo: String,
    #[serde(rename = "ref")]
    pub ref_name: Option<String>,
    pub allowed: bool,
    pub basis: String,
    pub statement: Option<String>,
    /// What became of an allowed action (`done`, `failed: …`), where recorded.
    pub outcome: Option<String>,
}

pub async fn audit(pool: &SqlitePool, limit: i64) -> Result<Vec<AuditEntry>> {
    type Row = (
        i64,
        String,
        String,
        String,
        Option<String>,
        bool,
        String,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT at, user_name, action, repo, ref_name, allowed, basis, statement, outcome FROM audit_log ORDER BY at DESC, id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| AuditEntry {
            time: rfc3339(r.0),
            user: r.1,
            action: r.2,
            repo: r.3,
            ref_name: r.4,
            allowed: r.5,
            basis: r.6,
            statement: r.7,
            outcome: r.8,
        })
        .collect())
}
