//! IAM-style policy documents and their evaluation — a pure core, no I/O.
//!
//! Documents use AWS's grammar with AWS's action names:
//! `{"Version": "2012-10-17", "Statement": [{"Sid", "Effect", "Action",
//! "Resource", "Condition"}]}`. Resources are `arn:nubo:codecommit:::REPO`,
//! `arn:nubo:secretsmanager:::secret:NAME` and
//! `arn:nubo:ssm:::parameter/NAME` (wildcards allowed). The condition key is `codecommit:References` with
//! `StringEquals`, `StringNotEquals`, `StringLike`, `StringNotLike` (and
//! their `IfExists` forms) and `Null`.
//!
//! Rules: an explicit Deny wins; otherwise an Allow allows; otherwise the
//! answer is no (default deny). Administrators and repository creators are
//! handled by the caller, after explicit denies.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Actions Nubo knows, by AWS's names.
pub const ACTIONS: &[&str] = &[
    "codecommit:GitPull",
    "codecommit:GitPush",
    "codecommit:CreateRepository",
    "codecommit:DeleteRepository",
    "codecommit:GetRepository",
    "codecommit:ListRepositories",
    "secretsmanager:GetSecretValue",
    "ssm:GetParameters",
    "codepipeline:PutApprovalResult",
];

pub const REFERENCES_KEY: &str = "codecommit:References";
const ARN_PREFIX: &str = "arn:nubo:codecommit:::";
/// Where each service's resource names start.
const RESOURCE_PREFIXES: &[&str] = &[
    ARN_PREFIX,
    "arn:nubo:secretsmanager:::secret:",
    "arn:nubo:ssm:::parameter/",
    "arn:nubo:codepipeline:::",
];

/// The resource name of a pipeline's action (approvals are granted on it).
pub fn pipeline_action_arn(pipeline: &str, stage: &str, action: &str) -> String {
    format!("arn:nubo:codepipeline:::{pipeline}/{stage}/{action}")
}

/// The resource name of a repository.
pub fn repo_arn(repo: &str) -> String {
    format!("{ARN_PREFIX}{repo}")
}

/// A stored value's canonical name: parameter names always start with '/'
/// (`prod/db` and `/prod/db` are one parameter).
pub fn canonical_name(kind: &str, name: &str) -> String {
    let name = name.trim();
    if kind == "parameter" {
        format!("/{}", name.trim_start_matches('/'))
    } else {
        name.to_string()
    }
}

/// The resource name of a stored secret (`secret`) or parameter
/// (`parameter`, whose name starts with `/`), as AWS writes them.
pub fn stored_value_arn(kind: &str, name: &str) -> String {
    if kind == "parameter" {
        format!("arn:nubo:ssm:::parameter/{}", name.trim_start_matches('/'))
    } else {
        format!("arn:nubo:secretsmanager:::secret:{name}")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, PartialEq)]
enum Operator {
    StringEquals,
    StringNotEquals,
    StringLike,
    StringNotLike,
    Null,
}

#[derive(Debug, Clone, PartialEq)]
struct Condition {
    operator: Operator,
    if_exists: bool,
    values: Vec<String>,
}

/// One parsed statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    actions: Vec<String>,
    resources: Vec<String>,
    conditions: Vec<Condition>,
}

/// A parsed, validated policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub statements: Vec<Statement>,
}

fn strings(v: &Value, what: &str) -> Result<Vec<String>, String> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{what} must hold strings"))
            })
            .collect(),
        _ => Err(format!(
            "{what} must be a string or a non-empty array of strings"
        )),
    }
}

/// Parses and checks a document; the error says what is wrong and where.
pub fn parse(text: &str) -> Result<Policy, String> {
    let doc: Value =
        serde_json::from_str(text).map_err(|e| format!("the policy is not valid JSON: {e}"))?;
    let obj = doc.as_object().ok_or("the policy must be a JSON object")?;
    for key in obj.keys() {
        if key != "Version" && key != "Statement" {
            return Err(format!(
                "unknown top-level key {key:?} (expected Version and Statement)"
            ));
        }
    }
    if let Some(v) = obj.get("Version") {
        if v != "2012-10-17" {
            return Err("Version must be \"2012-10-17\"".into());
        }
    }
    let list = match obj.get("Statement") {
        Some(Value::Array(a)) if !a.is_empty() => a.clone(),
        Some(s @ Value::Object(_)) => vec![s.clone()],
        _ => return Err("Statement must be an object or a non-empty array".into()),
    };
    let mut statements = Vec::new();
    for (i, s) in list.iter().enumerate() {
        let at = |m: String| format!("Statement {}: {m}", i + 1);
        let s = s
            .as_object()
            .ok_or_else(|| at("must be an object".into()))?;
        for key in s.keys() {
            if !matches!(
                key.as_str(),
                "Sid" | "Effect" | "Action" | "Resource" | "Condition"
            ) {
                return Err(at(format!(
                    "unknown key {key:?} (NotAction, NotResource and Principal are not supported)"
                )));
            }
        }
        let effect = match s.get("Effect").and_then(Value::as_str) {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            _ => return Err(at("Effect must be \"Allow\" or \"Deny\"".into())),
        };
        let actions = strings(
            s.get("Action")
                .ok_or_else(|| at("Action is required".into()))?,
            "Action",
        )
        .map_err(at)?;
        for a in &actions {
            let lower = a.to_ascii_lowercase();
            let service_named = ["codecommit:", "secretsmanager:", "ssm:", "codepipeline:"]
                .iter()
                .any(|p| lower.starts_with(p));
            let known = a == "*"
                || (service_named
                    && ACTIONS
                        .iter()
                        .any(|k| glob(&lower, &k.to_ascii_lowercase())));
            if !known {
                return Err(at(format!(
                    "action {a:?} matches none of {}",
                    ACTIONS.join(", ")
                )));
            }
        }
        let resources = strings(
            s.get("Resource")
                .ok_or_else(|| at("Resource is required".into()))?,
            "Resource",
        )
        .map_err(at)?;
        for r in &resources {
            if r != "*" && !RESOURCE_PREFIXES.iter().any(|p| r.starts_with(p)) {
                return Err(at(format!(
                    "resource {r:?} must be \"*\" or start with one of {}",
                    RESOURCE_PREFIXES.join(", ")
                )));
            }
        }
        let mut conditions = Vec::new();
        if let Some(c) = s.get("Condition") {
            let c = c
                .as_object()
                .ok_or_else(|| at("Condition must be an object".into()))?;
            for (op, body) in c {
                let (name, if_exists) = match op.strip_suffix("IfExists") {
                    Some(base) => (base, true),
                    None => (op.as_str(), false),
                };
                let operator = match name {
                    "StringEquals" => Operator::StringEquals,
                    "StringNotEquals" => Operator::StringNotEquals,
                    "StringLike" => Operator::StringLike,
                    "StringNotLike" => Operator::StringNotLike,
                    "Null" if !if_exists => Operator::Null,
                    _ => return Err(at(format!("condition operator {op:?} is not supported"))),
                };
                let body = body
                    .as_object()
                    .ok_or_else(|| at(format!("{op} must be an object")))?;
                for (key, v) in body {
                    if key != REFERENCES_KEY {
                        return Err(at(format!(
                            "condition key {key:?} is not supported (only {REFERENCES_KEY})"
                        )));
                    }
                    let values = match (v, &operator) {
                        (Value::Bool(b), Operator::Null) => vec![b.to_string()],
                        _ => strings(v, op).map_err(at)?,
                    };
                    if operator == Operator::Null
                        && !values.iter().all(|v| v == "true" || v == "false")
                    {
                        return Err(at("Null takes \"true\" or \"false\"".into()));
                    }
                    conditions.push(Condition {
                        operator: operator.clone(),
                        if_exists,
                        values,
                    });
                }
            }
        }
        statements.push(Statement {
            sid: s.get("Sid").and_then(Value::as_str).map(str::to_string),
            effect,
            actions,
            resources,
            conditions,
        });
    }
    Ok(Policy { statements })
}

/// `*` matches any run of characters, `?` any one character.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// What is being asked.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub action: &'a str,
    /// The resource's ARN ([`repo_arn`], [`stored_value_arn`]).
    pub resource: &'a str,
    /// The ref a push updates; `None` when the request has no ref.
    pub reference: Option<&'a str>,
}

impl Condition {
    fn holds(&self, reference: Option<&str>) -> bool {
        match (&self.operator, reference) {
            (Operator::Null, r) => {
                let absent = r.is_none();
                self.values.iter().any(|v| (v == "true") == absent)
            }
            (_, None) => self.if_exists,
            (Operator::StringEquals, Some(r)) => self.values.iter().any(|v| v == r),
            (Operator::StringNotEquals, Some(r)) => self.values.iter().all(|v| v != r),
            (Operator::StringLike, Some(r)) => self.values.iter().any(|v| glob(v, r)),
            (Operator::StringNotLike, Some(r)) => self.values.iter().all(|v| !glob(v, r)),
        }
    }
}

impl Statement {
    fn applies(&self, req: &Request) -> bool {
        let action = req.action.to_ascii_lowercase();
        self.actions
            .iter()
            .any(|a| glob(&a.to_ascii_lowercase(), &action))
            && self.resources.iter().any(|r| glob(r, req.resource))
            && self.conditions.iter().all(|c| c.holds(req.reference))
    }
}

/// The outcome of evaluating policies.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Decision {
    pub allowed: bool,
    /// `explicit-deny`, `allow`, or `implicit-deny`.
    pub basis: String,
    /// The statement that decided: `<policy source> / <Sid or #n>`.
    pub statement: Option<String>,
}

/// Evaluates `(source, policy)` pairs: an explicit deny wins, then any allow.
pub fn evaluate(policies: &[(String, Policy)], req: &Request) -> Decision {
    let mut allow: Option<String> = None;
    for (source, policy) in policies {
        for (i, s) in policy.statements.iter().enumerate() {
            if !s.applies(req) {
                continue;
            }
            let name = format!(
                "{source} / {}",
                s.sid.clone().unwrap_or_else(|| format!("#{}", i + 1))
            );
            match s.effect {
                Effect::Deny => {
                    return Decision {
                        allowed: false,
                        basis: "explicit-deny".into(),
                        statement: Some(name),
                    };
                }
                Effect::Allow => {
                    allow.get_or_insert(name);
                }
            }
        }
    }
    match allow {
        Some(name) => Decision {
            allowed: true,
            basis: "allow".into(),
            statement: Some(name),
        },
        None => Decision {
            allowed: false,
            basis: "implicit-deny".into(),
            statement: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Vec<(String, Policy)> {
        vec![("user/test".into(), parse(text).unwrap())]
    }

    const PROTECT_MAIN: &str = r#"{
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AllowAll", "Effect": "Allow", "Action": "codecommit:*", "Resource": "arn:nubo:codecommit:::app"},
            {"Sid": "ProtectMain", "Effect": "Deny", "Action": ["codecommit:GitPush"],
             "Resource": "arn:nubo:codecommit:::app",
             "Condition": {"StringEqualsIfExists": {"codecommit:References": ["refs/heads/main"]},
                           "Null": {"codecommit:References": "false"}}}
        ]}"#;

    fn ask<'a>(action: &'a str, repo: &'a str, reference: Option<&'a str>) -> Request<'a> {
        // Leaked: a test's few ARNs live as long as the test binary.
        let resource: &'a str = Box::leak(repo_arn(repo).into_boxed_str());
        Request {
            action,
            resource,
            reference,
        }
    }

    #[test]
    fn stored_values_have_their_own_actions_and_resources() {
        let pol = parse(
            r#"{"Statement": [
                {"Effect": "Allow", "Action": "ssm:GetParameters", "Resource": "arn:nubo:ssm:::parameter/ci/*"},
                {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "arn:nubo:secretsmanager:::secret:ci-*"}
            ]}"#,
        )
        .unwrap();
        let pol = vec![("user/a/p".to_string(), pol)];
        let can = |action: &str, kind: &str, name: &str| {
            let arn = stored_value_arn(kind, name);
            evaluate(
                &pol,
                &Request {
                    action,
                    resource: &arn,
                    reference: None,
                },
            )
            .allowed
        };
        assert!(can("ssm:GetParameters", "parameter", "/ci/token"));
        assert!(!can("ssm:GetParameters", "parameter", "/prod/db"));
        assert!(can("secretsmanager:GetSecretValue", "secret", "ci-deploy"));
        assert!(!can("secretsmanager:GetSecretValue", "secret", "prod-db"));
        assert!(!can("codecommit:GitPull", "secret", "ci-deploy"));
        assert_eq!(
            stored_value_arn("parameter", "/a/b"),
            "arn:nubo:ssm:::parameter/a/b"
        );
        assert!(parse(r#"{"Statement": {"Effect": "Allow", "Action": "ssm:DeleteEverything", "Resource": "*"}}"#).is_err());
        assert!(parse(r#"{"Statement": {"Effect": "Allow", "Action": "ssm:*", "Resource": "arn:nubo:s3:::x"}}"#).is_err());
    }

    #[test]
    fn branch_protection_denies_main_only() {
        let pol = p(PROTECT_MAIN);
        let main = evaluate(
            &pol,
            &ask("codecommit:GitPush", "app", Some("refs/heads/main")),
        );
        assert!(!main.allowed);
        assert_eq!(main.statement.as_deref(), Some("user/test / ProtectMain"));
        assert!(
            evaluate(
                &pol,
                &ask("codecommit:GitPush", "app", Some("refs/heads/feature"))
            )
            .allowed
        );
        // Connecting to push (no ref yet) is allowed; the refs are checked later.
        assert!(evaluate(&pol, &ask("codecommit:GitPush", "app", None)).allowed);
        assert!(evaluate(&pol, &ask("codecommit:GitPull", "app", None)).allowed);
    }

    #[test]
    fn default_deny_and_wildcards() {
        let pol = p(
            r#"{"Statement": {"Effect": "Allow", "Action": "codecommit:Git*", "Resource": "arn:nubo:codecommit:::team-*"}}"#,
        );
        assert!(evaluate(&pol, &ask("codecommit:GitPull", "team-web", None)).allowed);
        assert!(
            evaluate(&pol, &ask("codecommit:gitpush", "team-web", None)).allowed,
            "actions ignore case"
        );
        let other = evaluate(&pol, &ask("codecommit:GitPull", "private", None));
        assert!(!other.allowed);
        assert_eq!(other.basis, "implicit-deny");
        assert!(!evaluate(&pol, &ask("codecommit:DeleteRepository", "team-web", None)).allowed);
    }

    #[test]
    fn explicit_deny_wins_across_policies() {
        let mut pols = p(r#"{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}"#);
        pols.extend(vec![(
            "group/contractors".to_string(),
            parse(r#"{"Statement": {"Sid": "NoDelete", "Effect": "Deny", "Action": "codecommit:DeleteRepository", "Resource": "*"}}"#).unwrap(),
        )]);
        let d = evaluate(&pols, &ask("codecommit:DeleteRepository", "x", None));
        assert!(!d.allowed);
        assert_eq!(d.statement.as_deref(), Some("group/contractors / NoDelete"));
    }

    #[test]
    fn string_like_and_not_conditions() {
        let pol = p(
            r#"{"Statement": {"Effect": "Allow", "Action": "codecommit:GitPush", "Resource": "*",
            "Condition": {"StringLike": {"codecommit:References": "refs/heads/feature/*"}}}}"#,
        );
        assert!(
            evaluate(
                &pol,
                &ask("codecommit:GitPush", "r", Some("refs/heads/feature/x"))
            )
            .allowed
        );
        assert!(
            !evaluate(
                &pol,
                &ask("codecommit:GitPush", "r", Some("refs/heads/main"))
            )
            .allowed
        );
        assert!(
            !evaluate(&pol, &ask("codecommit:GitPush", "r", None)).allowed,
            "no ref, no match"
        );
        let not = p(
            r#"{"Statement": {"Effect": "Allow", "Action": "codecommit:GitPush", "Resource": "*",
            "Condition": {"StringNotEqualsIfExists": {"codecommit:References": "refs/heads/main"}}}}"#,
        );
        assert!(
            !evaluate(
                &not,
                &ask("codecommit:GitPush", "r", Some("refs/heads/main"))
            )
            .allowed
        );
        assert!(evaluate(&not, &ask("codecommit:GitPush", "r", Some("refs/tags/v1"))).allowed);
        assert!(evaluate(&not, &ask("codecommit:GitPush", "r", None)).allowed);
    }

    #[test]
    fn bad_documents_say_what_is_wrong() {
        for (doc, says) in [
            ("not json", "not valid JSON"),
            (r#"{"Statement": []}"#, "non-empty"),
            (
                r#"{"Statement": {"Effect": "Maybe", "Action": "*", "Resource": "*"}}"#,
                "Effect",
            ),
            (
                r#"{"Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}}"#,
                "matches none",
            ),
            (
                r#"{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::x"}}"#,
                "must be",
            ),
            (
                r#"{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"DateLessThan": {}}}}"#,
                "not supported",
            ),
            (
                r#"{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "NotAction": "x"}}"#,
                "unknown key",
            ),
            (
                r#"{"Version": "2008-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}"#,
                "Version",
            ),
        ] {
            let err = parse(doc).unwrap_err();
            assert!(err.contains(says), "{doc}: {err}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob("refs/heads/*", "refs/heads/a/b"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(glob("*", ""));
        assert!(!glob("main", "main2"));
    }
}
