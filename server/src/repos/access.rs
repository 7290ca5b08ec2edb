//! Sharing a repository without writing JSON: the Access tab gives a user
//! or a group read, write or admin on one repository, optionally limited to
//! branches, by writing one IAM-style policy on them named
//! `access.<repository>`. The policy stays an ordinary policy (the
//! simulator, the audit log and the API see it), and whoever manages the
//! repository may edit its JSON, but only within that repository: every
//! statement's resource must be the repository's own ARN, so sharing one
//! repository can never give anything else. Deleting the repository
//! removes these policies, so a new repository of the same name starts
//! with nobody's access.

use serde_json::{json, Value};
use sqlx::SqlitePool;

use crate::error::{Error, Result};
use crate::identity::accounts::{self, User};
use crate::identity::iam;
use crate::identity::policy::{self, Decision};
use crate::repos::Repo;

/// The levels the Access tab offers.
pub const LEVELS: &[&str] = &["read", "write", "admin"];

/// The name of the policy the Access tab writes for `repo`.
pub fn policy_name(repo: &str) -> String {
    format!("access.{repo}")
}

/// Checks a branch filter: branch names with `*` globs.
fn check_branches(branches: &[String]) -> Result<()> {
    for b in branches {
        let ok = !b.is_empty()
            && b.len() <= 200
            && !b.starts_with(['-', '/', '.'])
            && !b.contains("..")
            && b.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.' | '*'));
        if !ok {
            return Err(Error::invalid(
                "branches",
                format!("{b:?} is not a branch name: use letters, digits, '/', '-', '_', '.' and '*' for any characters"),
            ));
        }
    }
    Ok(())
}

/// The policy document for `level` on `repo`, pushes limited to
/// `branches` when there are any.
pub fn document(repo: &str, level: &str, branches: &[String]) -> Result<Value> {
    check_branches(branches)?;
    let arn = policy::repo_arn(repo);
    let refs: Vec<String> = branches.iter().map(|b| format!("refs/heads/{b}")).collect();
    let read = json!({"Sid": "Read", "Effect": "Allow",
        "Action": ["codecommit:GitPull", "codecommit:GetRepository"], "Resource": arn});
    let statements = match level {
        "read" => vec![read],
        "write" => {
            let mut push = json!({"Sid": "Push", "Effect": "Allow",
                "Action": "codecommit:GitPush", "Resource": arn});
            // IfExists: git's first request names no ref yet; the hook
            // then asks again for each ref the push updates.
            if !refs.is_empty() {
                push["Condition"] = json!({"StringLikeIfExists": {policy::REFERENCES_KEY: refs}});
            }
            vec![read, push]
        }
        // Pushes limited by an Allow, never a Deny: an explicit Deny would
        // also bind the repository's creator when they are in the group.
        "admin" if refs.is_empty() => vec![json!({"Sid": "Admin", "Effect": "Allow",
            "Action": "codecommit:*", "Resource": arn})],
        "admin" => vec![
            json!({"Sid": "Admin", "Effect": "Allow",
                "Action": ["codecommit:GitPull", "codecommit:GetRepository", "codecommit:DeleteRepository"],
                "Resource": arn}),
            json!({"Sid": "Push", "Effect": "Allow", "Action": "codecommit:GitPush", "Resource": arn,
                "Condition": {"StringLikeIfExists": {policy::REFERENCES_KEY: refs}}}),
        ],
        other => {
            return Err(Error::invalid(
                "level",
                format!("{other:?} is not a level: choose read, write or admin"),
            ))
        }
    };
    Ok(json!({"Version": "2012-10-17", "Statement": statements}))
}

/// The branches a document written by [`document`] limits pushes to.
fn branches_of(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let statements = match &doc["Statement"] {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    for s in statements {
        for op in ["StringLikeIfExists"] {
            if let Some(Value::Array(refs)) = s["Condition"][op].get(policy::REFERENCES_KEY) {
                out = refs
                    .iter()
                    .filter_map(|r| r.as_str()?.strip_prefix("refs/heads/"))
                    .map(str::to_string)
                    .collect();
            }
        }
    }
    out
}

/// Which level a stored document is, or `custom` once edited by hand.
pub fn level_of(repo: &str, doc: &Value) -> String {
    let branches = branches_of(doc);
    LEVELS
        .iter()
        .find(|l| document(repo, l, &branches).ok().as_ref() == Some(doc))
        .map(|l| l.to_string())
        .unwrap_or_else(|| "custom".to_string())
}

/// Checks a hand-edited document: valid, and about `repo` alone.
pub fn check_scoped(repo: &str, text: &str) -> Result<Value> {
    policy::parse(text).map_err(|e| Error::invalid("document", e))?;
    let doc: Value =
        serde_json::from_str(text).map_err(|e| Error::invalid("document", e.to_string()))?;
    let arn = policy::repo_arn(repo);
    let statements = match &doc["Statement"] {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    for (i, s) in statements.iter().enumerate() {
        let resources: Vec<&str> = match &s["Resource"] {
            Value::String(r) => vec![r.as_str()],
            Value::Array(rs) => rs.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if resources.is_empty() || resources.iter().any(|r| *r != arn) {
            return Err(Error::invalid(
                "document",
                format!("statement {} must have \"Resource\": \"{arn}\" and nothing else: access given here is for this repository only", i + 1),
            ));
        }
    }
    Ok(doc)
}

/// A principal named on the Access tab: (kind, id, name as stored).
pub async fn principal(pool: &SqlitePool, kind: &str, name: &str) -> Result<(String, String)> {
    let name = name.trim();
    match kind {
        "user" => match accounts::find_by_name(pool, name).await? {
            Some(u) => Ok((u.id, u.name)),
            None => Err(Error::invalid(
                "principal",
                format!("there is no user named {name:?}"),
            )),
        },
        "group" => match iam::find_group(pool, name).await {
            Ok(g) => Ok((g.id, g.name)),
            Err(Error::NotFound(_)) => Err(Error::invalid(
                "principal",
                format!("there is no group named {name:?}"),
            )),
            Err(e) => Err(e),
        },
        other => Err(Error::invalid(
            "kind",
            format!("{other:?} is not a kind of principal: choose user or group"),
        )),
    }
}

/// Refuses what would take the creator's own access away: a policy on the
/// creator (who may do everything with the repository already), or a Deny
/// on a group they are in (an explicit Deny wins over being the creator).
pub async fn guard(
    pool: &SqlitePool,
    repo: &Repo,
    kind: &str,
    id: &str,
    doc: &Value,
) -> Result<()> {
    if kind == "user" && id == repo.owner_id {
        return Err(Error::invalid(
            "principal",
            format!(
                "{} created this repository and may do everything with it already",
                repo.owner
            ),
        ));
    }
    let statements = match &doc["Statement"] {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    let denies = statements.iter().any(|s| s["Effect"] == "Deny");
    if denies && kind == "group" {
        let member: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM group_members WHERE group_id = $1 AND user_id = $2")
                .bind(id)
                .bind(&repo.owner_id)
                .fetch_optional(pool)
                .await?;
        if member.is_some() {
            return Err(Error::invalid(
                "document",
                format!("a Deny here would also bind {}, who created the repository and is in this group", repo.owner),
            ));
        }
    }
    Ok(())
}

/// Gives (or changes) a principal's access to `repo`.
pub async fn put(pool: &SqlitePool, repo: &Repo, kind: &str, id: &str, doc: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(doc).map_err(|e| Error::Internal(e.to_string()))?;
    iam::put_policy(pool, kind, id, &policy_name(&repo.name), &text).await?;
    Ok(())
}

/// Takes a principal's access given here away.
pub async fn revoke(pool: &SqlitePool, repo: &Repo, kind: &str, id: &str) -> Result<()> {
    iam::delete_policy(pool, kind, id, &policy_name(&repo.name))
        .await
        .map_err(|e| match e {
            Error::NotFound(_) => Error::NotFound("no access was given to them here".into()),
            e => e,
        })
}

/// Access given on the tab: (kind, principal name, document).
pub async fn grants(pool: &SqlitePool, repo: &Repo) -> Result<Vec<(String, String, Value)>> {
    let rows: Vec<(String, Option<String>, String)> = sqlx::query_as(
        "SELECT p.principal_kind, COALESCE(u.name, g.name), p.document FROM policies p
         LEFT JOIN users u ON p.principal_kind = 'user' AND u.id = p.principal_id
         LEFT JOIN user_groups g ON p.principal_kind = 'group' AND g.id = p.principal_id
         WHERE p.name = $1",
    )
    .bind(policy_name(&repo.name))
    .fetch_all(pool)
    .await?;
    let mut out: Vec<_> = rows
        .into_iter()
        .filter_map(|(kind, name, doc)| Some((kind, name?, serde_json::from_str(&doc).ok()?)))
        .collect();
    out.sort_by_key(|(kind, name, _)| (kind.clone(), name.to_lowercase()));
    Ok(out)
}

/// Removes every access given to `repo` (when it is deleted).
pub async fn remove_all(tx: &mut sqlx::SqliteConnection, repo: &str) -> Result<()> {
    sqlx::query("DELETE FROM policies WHERE name = $1")
        .bind(policy_name(repo))
        .execute(tx)
        .await?;
    Ok(())
}

/// The simulator's answer, in words.
fn why(d: &Decision) -> String {
    match d.basis.as_str() {
        "administrator" => "an administrator".into(),
        "creator" => "created it".into(),
        _ => d.statement.clone().unwrap_or_default(),
    }
}

/// One user's access: read, push to `push_ref`, manage; each (allowed, why).
pub type Answer = (bool, String);

/// Every enabled user with any access to `repo`, and why, as the policy
/// simulator decides it.
pub async fn who(
    pool: &SqlitePool,
    repo: &Repo,
    push_ref: &str,
) -> Result<Vec<(User, Answer, Answer, Answer)>> {
    let target = repo.target();
    let mut out = Vec::new();
    for user in accounts::list(pool).await? {
        if user.disabled {
            continue;
        }
        let policies = iam::policies_for(pool, &user).await?;
        let ask = |action: &str, reference: Option<&str>| {
            let d = iam::decide_with(&policies, &user, action, &target, reference);
            (d.allowed, why(&d))
        };
        let read = ask("codecommit:GitPull", None);
        let push = ask("codecommit:GitPush", Some(push_ref));
        let manage = ask("codecommit:DeleteRepository", None);
        if read.0 || push.0 || manage.0 {
            out.push((user, read, push, manage));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_level_is_recognised_back_with_its_branches() {
        for level in LEVELS {
            for branches in [vec![], vec!["main".to_string(), "release/*".to_string()]] {
                let doc = document("app", level, &branches).unwrap();
                assert!(!doc.to_string().contains("Deny"), "{doc}");
                if *level != "read" {
                    assert_eq!(branches_of(&doc), branches, "{level}");
                }
                assert_eq!(level_of("app", &doc), *level, "{doc}");
                check_scoped("app", &doc.to_string()).unwrap();
            }
        }
        let mut edited = document("app", "read", &[]).unwrap();
        edited["Statement"][0]["Sid"] = json!("Mine");
        assert_eq!(level_of("app", &edited), "custom");
    }

    #[test]
    fn an_edited_policy_cannot_reach_past_its_repository() {
        for resource in [
            json!("*"),
            json!("arn:nubo:codecommit:::app*"),
            json!("arn:nubo:codecommit:::other"),
            json!(["arn:nubo:codecommit:::app", "arn:nubo:ssm:::parameter/db"]),
        ] {
            let doc = json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "*", "Resource": resource}]});
            let e = check_scoped("app", &doc.to_string()).unwrap_err();
            assert!(e.to_string().contains("this repository only"), "{e}");
        }
        assert!(check_scoped("app", "{not json").is_err());
        assert!(document("app", "owner", &[]).is_err());
        assert!(document("app", "write", &["../x".into()]).is_err());
    }
}
