//! Identity's pages: sign-in, the account, API tokens, git credentials and
//! SSH keys, user administration, the audit log and the policy simulator.

use leptos::prelude::*;

use crate::layout::{document, flash_view, shell};
use crate::{Flash, FormEcho, PageContext};

/// The sign-in page. `error` is shown above the form.
/// `username` is what the user typed before a refusal (kept, with the
/// focus on the password then).
pub fn login(csrf: &str, message: Option<Flash>, next: &str, username: &str) -> String {
    let flash = message.map(flash_view);
    let typed = !username.is_empty();
    let body = view! {
        <div class="login-wrap">
            <div class="card login">
                <div class="brand"><span class="brand-mark"></span>"Nubo"</div>
                <p class="muted center">"Sign in to your workspaces, repositories and pipelines."</p>
                {flash}
                <form class="stack" method="post" action="/login">
                    <input type="hidden" name="csrf_token" value=csrf.to_string()/>
                    <input type="hidden" name="next" value=next.to_string()/>
                    <label>"User name" <input type="text" name="username" autocomplete="username" required
                        value=username.to_string() autofocus=!typed/></label>
                    <label>"Password" <input type="password" name="password" autocomplete="current-password" required
                        autofocus=typed/></label>
                    <button type="submit">"Sign in"</button>
                </form>
                <p class="muted center small">"Forgot your password? An administrator can give you a reset link."</p>
            </div>
        </div>
    };
    document("Sign in", body)
}

/// The account page: change password.
/// `echo` marks the input at fault after a refusal (passwords are never
/// sent back).
pub fn account(ctx: &PageContext, echo: &FormEcho) -> String {
    let content = view! {
        <section class="card">
            <h2>"Change password"</h2>
            <form class="stack" method="post" action="/account/password">
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                <label>"Current password"
                    <input type="password" name="current_password" autocomplete="current-password" required
                        aria-invalid=echo.invalid("current_password")/>
                    {echo.error_for("current_password")}
                </label>
                {crate::forms::new_password_inputs(echo, "Repeat new password")}
                <button type="submit">"Change password"</button>
            </form>
        </section>
    };
    shell(ctx, content)
}

/// A row of the API token list.
#[derive(Debug, Clone)]
pub struct TokenRow {
    pub id: String,
    pub description: String,
    pub prefix: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

/// API tokens: list, create (the new secret shown once), revoke.
/// `echo` fills the create form again after a refusal.
pub fn tokens(
    ctx: &PageContext,
    rows: Vec<TokenRow>,
    new_token: Option<String>,
    echo: &FormEcho,
) -> String {
    let new_token = new_token.map(|token| {
        view! {
            <section class="card">
                <h2>"Your new token"</h2>
                <p class="muted">"Copy it now: Nubo stores only a hash and cannot show it again."</p>
                <div class="secret"><code id="new-token" data-testid="new-token">{token}</code>
                    <button type="button" class="secondary" data-copy="new-token" hidden>"Copy"</button></div>
            </section>
        }
    });
    let list = if rows.is_empty() {
        view! { <p class="muted">"No tokens yet."</p> }.into_any()
    } else {
        let csrf = ctx.csrf.clone();
        let rows = rows
            .into_iter()
            .map(|row| {
                let action = format!("/account/tokens/{}/revoke", row.id);
                let last_used = match row.last_used_at {
                    Some(t) => view! { <time datetime=t.clone() data-relative>{t.clone()}</time> }.into_any(),
                    None => view! { <span class="muted">"never"</span> }.into_any(),
                };
                view! {
                    <tr>
                        <td>{row.description}</td>
                        <td><code>{format!("{}…", row.prefix)}</code></td>
                        <td><time datetime=row.created_at.clone() data-relative>{row.created_at.clone()}</time></td>
                        <td>{last_used}</td>
                        <td>
                            <form class="inline" method="post" action=action data-confirm="Revoke this token? Programs using it will stop working.">
                                <input type="hidden" name="csrf_token" value=csrf.clone()/>
                                <button type="submit" class="danger">"Revoke"</button>
                            </form>
                        </td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <table>
                <thead><tr><th>"Description"</th><th>"Token"</th><th>"Created"</th><th>"Last used"</th><th></th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        }
        .into_any()
    };
    let content = view! {
        {new_token}
        <section class="card">
            <h2>"Create a token"</h2>
            <p class="muted">"Use a token as " <code>"Authorization: Bearer <token>"</code> " on the API."</p>
            <form class="stack" method="post" action="/account/tokens">
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                <label>"Description"
                    <input type="text" name="description" placeholder="CI on my laptop" required
                        value=echo.value("description", "") aria-invalid=echo.invalid("description")/>
                    {echo.error_for("description")}
                </label>
                <button type="submit">"Create token"</button>
            </form>
        </section>
        <section class="card"><h2>"Your tokens"</h2>{list}</section>
    };
    shell(ctx, content)
}

/// A row of the git credential list.
#[derive(Debug, Clone)]
pub struct GitCredentialRow {
    pub id: String,
    pub username: String,
    /// "all repositories, read-write" and the like.
    pub scope: String,
    pub created_at: String,
    pub expires_at: Option<String>,
}

/// A registered SSH key.
#[derive(Debug, Clone)]
pub struct SshKeyRow {
    pub id: String,
    pub fingerprint: String,
    pub algorithm: String,
    pub comment: String,
}

/// SSH keys and HTTPS git credentials: add keys; generate credentials
/// (shown once); list and revoke both.
pub fn git_credentials(
    ctx: &PageContext,
    keys: Vec<SshKeyRow>,
    rows: Vec<GitCredentialRow>,
    new: Option<(String, String)>,
    echo: &FormEcho,
) -> String {
    let key_list = if keys.is_empty() {
        view! { <p class="muted">"No SSH keys yet."</p> }.into_any()
    } else {
        let csrf = ctx.csrf.clone();
        let rows = keys
            .into_iter()
            .map(|k| {
                let action = format!("/account/ssh-keys/{}/delete", k.id);
                view! {
                    <tr data-key=k.fingerprint.clone()>
                        <td><code>{k.fingerprint.clone()}</code></td>
                        <td>{k.algorithm}</td>
                        <td>{k.comment}</td>
                        <td>
                            <form class="inline" method="post" action=action data-confirm="Remove this key? git over SSH stops accepting it.">
                                <input type="hidden" name="csrf_token" value=csrf.clone()/>
                                <button type="submit" class="danger">"Remove"</button>
                            </form>
                        </td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <table>
                <thead><tr><th>"Fingerprint"</th><th>"Type"</th><th>"Comment"</th><th></th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        }
        .into_any()
    };
    let ssh_section = view! {
        <section class="card">
            <h2>"SSH keys"</h2>
            {key_list}
            <form class="stack" method="post" action="/account/ssh-keys">
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                <label>"Public key"
                    <input type="text" name="public_key" placeholder="ssh-ed25519 AAAA… you@laptop" required
                        value=echo.value("public_key", "") aria-invalid=echo.invalid("public_key")/>
                    {echo.error_for("public_key")}
                </label>
                <button type="submit">"Add SSH key"</button>
            </form>
        </section>
    };
    let new = new.map(|(username, password)| {
        view! {
            <section class="card">
                <h2>"Your new git credential"</h2>
                <p class="muted">"Copy the password now: Nubo stores only a hash and cannot show it again."</p>
                <p>"User name"</p>
                <div class="secret"><code id="git-username" data-testid="git-username">{username}</code>
                    <button type="button" class="secondary" data-copy="git-username" hidden>"Copy"</button></div>
                <p>"Password"</p>
                <div class="secret"><code id="git-password" data-testid="git-password">{password}</code>
                    <button type="button" class="secondary" data-copy="git-password" hidden>"Copy"</button></div>
            </section>
        }
    });
    let csrf = ctx.csrf.clone();
    let list = if rows.is_empty() {
        view! { <p class="muted">"No git credentials yet."</p> }.into_any()
    } else {
        let rows = rows
            .into_iter()
            .map(|r| {
                let action = format!("/account/git-credentials/{}/revoke", r.id);
                let expires = r.expires_at.clone().unwrap_or_else(|| "never".into());
                view! {
                    <tr>
                        <td><code>{r.username}</code></td>
                        <td>{r.scope}</td>
                        <td><time datetime=r.created_at.clone() data-relative>{r.created_at.clone()}</time></td>
                        <td>{expires}</td>
                        <td>
                            <form class="inline" method="post" action=action data-confirm="Revoke this credential? git will stop accepting it.">
                                <input type="hidden" name="csrf_token" value=csrf.clone()/>
                                <button type="submit" class="danger">"Revoke"</button>
                            </form>
                        </td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <table>
                <thead><tr><th>"User name"</th><th>"Scope"</th><th>"Created"</th><th>"Expires"</th><th></th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        }
        .into_any()
    };
    let content = view! {
        {new}
        {ssh_section}
        <section class="card">
            <h2>"HTTPS git credentials"</h2>
            <p class="muted">"A generated user name and password for git over HTTPS, like CodeCommit's. Temporary, scoped credentials come from the API (" <code>"POST /api/v1/me/temporary-credentials"</code> ")."</p>
            <form method="post" action="/account/git-credentials">
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                <button type="submit">"Generate credentials"</button>
            </form>
        </section>
        <section class="card"><h2>"Your git credentials"</h2>{list}</section>
    };
    shell(ctx, content)
}

/// One audit log row.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub time: String,
    pub user: String,
    pub action: String,
    pub repo: String,
    pub reference: Option<String>,
    pub allowed: bool,
    pub basis: String,
    pub statement: Option<String>,
    /// What became of the allowed action (`done`, `failed: …`), if recorded.
    pub outcome: Option<String>,
}

/// Administrators: the newest access decisions.
pub fn audit(ctx: &PageContext, rows: Vec<AuditRow>) -> String {
    let rows = rows
        .into_iter()
        .map(|r| {
            let result = if r.allowed {
                view! { <span class="badge on">"allowed"</span> }
            } else {
                view! { <span class="badge off">"denied"</span> }
            };
            view! {
                <tr>
                    <td><time datetime=r.time.clone() data-relative>{r.time.clone()}</time></td>
                    <td>{r.user}</td>
                    <td><code>{r.action}</code></td>
                    <td>{r.repo}</td>
                    <td><code>{r.reference.unwrap_or_default()}</code></td>
                    <td>{result}{r.outcome.map(|o| {
                        let failed = o.starts_with("failed");
                        view! { " "<span class=if failed { "outcome problem" } else { "outcome muted" } data-testid="outcome">{o}</span> }
                    })}</td>
                    <td>{r.basis}" "<span class="muted">{r.statement.unwrap_or_default()}</span></td>
                </tr>
            }
        })
        .collect_view();
    let content = view! {
        <section class="card" data-testid="audit">
            <table>
                <thead><tr><th>"When"</th><th>"User"</th><th>"Action"</th><th>"Repository"</th><th>"Ref"</th><th>"Result"</th><th>"Why"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </section>
    };
    shell(ctx, content)
}

/// The simulator's form values and, after a run, its answer.
#[derive(Debug, Clone, Default)]
pub struct Simulation {
    pub user: String,
    pub action: String,
    pub repo: String,
    pub reference: String,
    /// (allowed, basis, statement)
    pub answer: Option<(bool, String, Option<String>)>,
}

/// Administrators: can USER do ACTION on REPO/REF, and which statement decided?
pub fn simulator(ctx: &PageContext, actions: &[&str], sim: Simulation) -> String {
    let options = actions
        .iter()
        .map(|a| {
            let selected = (*a == sim.action).then_some("selected");
            view! { <option value=a.to_string() selected=selected>{a.to_string()}</option> }
        })
        .collect_view();
    let answer = sim.answer.clone().map(|(allowed, basis, statement)| {
        let (class, verdict) = if allowed {
            ("flash ok", "Allowed")
        } else {
            ("flash error", "Denied")
        };
        view! {
            <div class=class data-testid="simulation">
                <strong>{verdict}</strong>" — " {basis} {statement.map(|s| format!(" ({s})"))}
            </div>
        }
    });
    let content = view! {
        {answer}
        <section class="card">
            <form class="stack" method="post" action="/admin/simulator">
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                <label>"User" <input type="text" name="user" value=sim.user.clone() required/></label>
                <label>"Action" <select name="action">{options}</select></label>
                <label>"Repository (or secret / parameter name)" <input type="text" name="repo" value=sim.repo.clone() required/></label>
                <label>"Ref (optional)" <input type="text" name="reference" value=sim.reference.clone() placeholder="refs/heads/main"/></label>
                <button type="submit">"Simulate"</button>
            </form>
        </section>
    };
    shell(ctx, content)
}
